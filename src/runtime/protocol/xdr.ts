// XDR (RFC 4506) primitives, just the subset guestfsd's protocol uses.
// 64-bit integers are bigint end to end so Int64/FBytes never lose precision.

export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u32(n: number): this {
    this.reserve(4);
    this.buf.writeUInt32BE(n >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  i32(n: number): this {
    if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) {
      throw new RangeError(`${n} does not fit in a 32-bit signed integer`);
    }
    this.reserve(4);
    this.buf.writeInt32BE(n, this.pos);
    this.pos += 4;
    return this;
  }

  u64(n: bigint): this {
    this.reserve(8);
    this.buf.writeBigUInt64BE(n, this.pos);
    this.pos += 8;
    return this;
  }

  i64(n: bigint): this {
    this.reserve(8);
    this.buf.writeBigInt64BE(n, this.pos);
    this.pos += 8;
    return this;
  }

  bool(b: boolean): this {
    return this.u32(b ? 1 : 0);
  }

  /** Variable-length opaque: length word, bytes, zero padding to 4. */
  opaque(data: Uint8Array): this {
    this.u32(data.length);
    this.reserve(data.length + 3);
    this.buf.set(data, this.pos);
    this.pos += data.length;
    const pad = (4 - (data.length % 4)) % 4;
    this.buf.fill(0, this.pos, this.pos + pad);
    this.pos += pad;
    return this;
  }

  /** An XDR string, UTF-8 encoded straight into the buffer (no intermediate copy). */
  string(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.u32(n);
    this.reserve(n + 3);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
    const pad = (4 - (n % 4)) % 4;
    this.buf.fill(0, this.pos, this.pos + pad);
    this.pos += pad;
    return this;
  }

  get length(): number {
    return this.pos;
  }

  /** The encoded bytes (a view; copy it if the writer is reused). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class XdrDecodeError extends Error {}

export class XdrReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new XdrDecodeError(
        `truncated XDR data: need ${n} bytes at offset ${this.pos}, have ${this.buf.length - this.pos}`,
      );
    }
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  i64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  f32(): number {
    this.need(4);
    const v = this.buf.readFloatBE(this.pos);
    this.pos += 4;
    return v;
  }

  bool(): boolean {
    return this.u32() !== 0;
  }

  fixedOpaque(len: number): Buffer {
    const padded = len + ((4 - (len % 4)) % 4);
    this.need(padded);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += padded;
    return v;
  }

  opaque(): Buffer {
    return this.fixedOpaque(this.u32());
  }

  string(): string {
    return this.opaque().toString('utf8');
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }
}
