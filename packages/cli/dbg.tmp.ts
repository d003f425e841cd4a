import { checkProgram } from './src/check/index';
import { mnemonicOf } from '@ringshift/decoder';
const p: any = { items: [ { kind: 'sreg', r: [0, 3, 11, 0, 0, 0] }, { kind: 'flags', r: [8, 0x200, 0, 0, 0, 0] }, { kind: 'flags', r: [1, 0, 0, 0, 0, 0] } ], regs: [0,0,0,0,0,0,0], eflags: 0, paging: false, ending: 'fall', dataSeed: 7 };
const r = checkProgram(p, { backends: ['native', 'rewrite'] });
console.log(r.difference, r.runs.map((x: any) => x.reason + ' ' + x.guestInstructions));
console.log(Object.keys(r.rewrite!));
console.log(r.rewrite!.map.sites.map((s: any) => `${s.addr.toString(16)} ${mnemonicOf(s.formId)} ${s.tactic} ${s.stub}`).join('\n'));
