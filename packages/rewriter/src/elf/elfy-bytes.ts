// elfy reads its input through Node's Buffer methods. Rather than depend on the Buffer global
// (absent in browsers), this gives a plain Uint8Array exactly the methods elfy calls, with
// Buffer's semantics: slice() is a view, not a copy, so elfy's per-section `data` costs nothing.
import type { ElfyBuffer } from 'elfy';

export class ElfyBytes extends Uint8Array implements ElfyBuffer {
  private view(): DataView {
    return new DataView(this.buffer, this.byteOffset, this.byteLength);
  }

  override slice(start = 0, end = this.length): ElfyBytes {
    return this.subarray(start, end) as ElfyBytes;
  }

  /** Latin-1, one character per byte: elfy only compares the magic with it. */
  override toString(): string {
    let s = '';
    for (let i = 0; i < this.length; i++) s += String.fromCharCode(this[i]!);
    return s;
  }

  readUInt8(offset: number): number {
    return this.view().getUint8(offset);
  }
  readInt8(offset: number): number {
    return this.view().getInt8(offset);
  }
  readUInt16LE(offset: number): number {
    return this.view().getUint16(offset, true);
  }
  readUInt16BE(offset: number): number {
    return this.view().getUint16(offset, false);
  }
  readInt16LE(offset: number): number {
    return this.view().getInt16(offset, true);
  }
  readInt16BE(offset: number): number {
    return this.view().getInt16(offset, false);
  }
  readUInt32LE(offset: number): number {
    return this.view().getUint32(offset, true);
  }
  readUInt32BE(offset: number): number {
    return this.view().getUint32(offset, false);
  }
  readInt32LE(offset: number): number {
    return this.view().getInt32(offset, true);
  }
  readInt32BE(offset: number): number {
    return this.view().getInt32(offset, false);
  }
}

/** The same bytes (no copy) as an ElfyBytes. */
export function elfyBytes(bytes: Uint8Array): ElfyBytes {
  // The cast only narrows the type: a SharedArrayBuffer-backed view works the same.
  return new ElfyBytes(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
}
