// Site selection: which discovered instructions the rewriter patches. The selection words are
// the decoder's (selectForms: class names, mnemonics, form names), so there is one list of what
// "sensitive" means in the project, in packages/decoder/src/table/classes.ts.
import { CLASS_SELECTORS, Decoder, Instruction, classOf, formName, formatIntel, selectForms } from '@ringshift/decoder';
import { codeRegions } from './discover';
import type { ElfImage } from './elf/read';
import { RewriteInputError } from './errors';
import type { Discovery, Site, SiteReason } from './model';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** The forms a selection names; an unknown word is the user's mistake, so a RewriteInputError. */
export function selectionForms(select: string): ReadonlySet<number> {
  let forms: ReadonlySet<number>;
  try {
    forms = selectForms(select);
  } catch (e) {
    throw new RewriteInputError((e as Error).message);
  }
  if (forms.size === 0) throw new RewriteInputError(`empty selection '${select}': name at least one class, mnemonic or form`);
  return forms;
}

/**
 * The most specific class of a selected form. IOPL sensitivity that holds only in virtual-8086
 * mode (PUSHF, POPF, INT n, IRET) ranks below Robin & Irvine's sensitive-unprivileged, because
 * the guests are protected-mode kernels: there, POPF is sensitive for what it silently drops,
 * not for a #GP it does not raise.
 */
export function siteReason(formId: number, jumpsSelected: boolean): SiteReason {
  const c = classOf(formId);
  if (c.privileged !== 'no') return 'privileged';
  if (c.ioplSensitive === 'always') return 'iopl';
  if (c.sensitiveUnprivileged) return 'sensitive-unprivileged';
  if (c.ioplSensitive !== 'no') return 'iopl';
  if (jumpsSelected && CLASS_SELECTORS.jumps(c)) return 'jumps';
  return 'selected';
}

/**
 * Every discovered instruction whose form `select` names (e.g. 'sensitive', 'sensitive,jumps',
 * 'cpuid,Mov_cr_r32'), in address order, with its Intel-syntax text re-decoded from the image.
 */
export function findSites(elf: ElfImage, discovery: Discovery, select: string): Site[] {
  const forms = selectionForms(select);
  const jumpsSelected = select.split(',').some((w) => w.trim() === 'jumps');
  const regions = codeRegions(elf);
  const decoder = new Decoder(32, new Uint8Array(0));
  const ins = new Instruction();
  const sites: Site[] = [];
  let r = 0;
  // Indexed, not for-of: half a million iterator results before the loop is optimised.
  const all = discovery.instructions;
  for (let k = 0; k < all.length; k++) {
    const i = all[k]!;
    if (!forms.has(i.formId)) continue;
    while (r < regions.length && i.addr >= regions[r]!.end) r++;
    const region = regions[r];
    if (!region || i.addr < region.start) {
      throw new RewriteInputError(`discovery lists an instruction at ${hex(i.addr)}, outside every executable section of this image`);
    }
    decoder.seek(region.bytes, i.addr, i.addr - region.start);
    decoder.decodeAt(ins);
    if (ins.invalid !== 0 || ins.form !== i.formId || ins.length !== i.length) {
      throw new RewriteInputError(
        `discovery does not match this image at ${hex(i.addr)}: it says ${formName(i.formId)} (${i.length} bytes), the bytes decode as ${formName(ins.form)} (${ins.length})`,
      );
    }
    sites.push({
      addr: i.addr, length: i.length, formId: i.formId, text: formatIntel(ins),
      reason: siteReason(i.formId, jumpsSelected), evidence: i.evidence,
    });
  }
  return sites;
}
