/**
 * The protobuf wire format, as much of it as OTLP needs: a bounded reader for requests and a
 * writer for responses (and tests). No schema compiler: OTLP is a dozen small messages.
 */

export const WIRE = { varint: 0, fixed64: 1, lengthDelimited: 2, fixed32: 5 } as const;

/** Malformed input: the message says what and where (byte offset), never anything internal. */
export class ProtobufError extends Error {
  override readonly name = 'ProtobufError';
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Reads one message's fields from `bytes[start, end)`; nested messages are read by sub-readers of the same buffer. */
export class ProtobufReader {
  private pos: number;

  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** The next field's number and wire type. Groups (wire types 3 and 4) are refused: OTLP has none. */
  tag(): { field: number; wireType: number } {
    const at = this.pos;
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new ProtobufError(`Field number 0 at byte ${at}`);
    if (wireType !== 0 && wireType !== 1 && wireType !== 2 && wireType !== 5) throw new ProtobufError(`Unsupported wire type ${wireType} at byte ${at}`);
    return { field, wireType };
  }

  /** An unsigned varint up to 2^53 (lengths, tags, enums, counts). */
  varint(): number {
    const value = this.varint64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtobufError(`Varint too large at byte ${this.pos}`);
    return Number(value);
  }

  /** A full 64-bit varint, unsigned. */
  varint64(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw new ProtobufError('Truncated varint');
      const byte = this.bytes[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result & 0xffffffffffffffffn;
    }
    throw new ProtobufError(`Varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** A varint read as a signed 64-bit integer (int64, two's complement). */
  int64(): bigint {
    return BigInt.asIntN(64, this.varint64());
  }

  fixed64(): bigint {
    const view = this.take(8);
    return new DataView(view.buffer, view.byteOffset, 8).getBigUint64(0, true);
  }

  double(): number {
    const view = this.take(8);
    return new DataView(view.buffer, view.byteOffset, 8).getFloat64(0, true);
  }

  fixed32(): number {
    const view = this.take(4);
    return new DataView(view.buffer, view.byteOffset, 4).getUint32(0, true);
  }

  bytesField(): Uint8Array {
    return this.take(this.varint());
  }

  string(): string {
    try {
      return textDecoder.decode(this.bytesField());
    } catch (error) {
      if (error instanceof ProtobufError) throw error;
      throw new ProtobufError(`Invalid UTF-8 in a string field before byte ${this.pos}`);
    }
  }

  /** A reader over the next length-delimited field (a nested message). */
  message(): ProtobufReader {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) throw new ProtobufError(`Truncated message at byte ${start}: ${length} bytes declared`);
    this.pos += length;
    return new ProtobufReader(this.bytes, start, start + length);
  }

  /** Skips a field this reader does not know (unknown fields are ignored, as protobuf requires). */
  skipField(wireType: number): void {
    if (wireType === WIRE.varint) this.varint64();
    else if (wireType === WIRE.fixed64) this.take(8);
    else if (wireType === WIRE.lengthDelimited) this.take(this.varint());
    else if (wireType === WIRE.fixed32) this.take(4);
    else throw new ProtobufError(`Unsupported wire type ${wireType}`);
  }

  /** Refuses a field whose wire type is not the one its number has. */
  expect(wireType: number, expected: number, field: number): void {
    if (wireType !== expected) throw new ProtobufError(`Field ${field} has wire type ${wireType}, expected ${expected}`);
  }

  private take(length: number): Uint8Array {
    if (length > this.end - this.pos) throw new ProtobufError(`Truncated field at byte ${this.pos}: ${length} bytes declared`);
    const slice = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return slice;
  }
}

const textEncoder = new TextEncoder();

/** Builds a message; nested messages are written by their own writer and added with `message`. */
export class ProtobufWriter {
  private readonly chunks: number[] = [];

  tag(field: number, wireType: number): this {
    return this.rawVarint(BigInt(field * 8 + wireType));
  }

  varint(field: number, value: number | bigint): this {
    return this.tag(field, WIRE.varint).rawVarint(BigInt.asUintN(64, BigInt(value)));
  }

  fixed64(field: number, value: bigint): this {
    return this.fixedWidth(field, WIRE.fixed64, 8, (view) => view.setBigUint64(0, BigInt.asUintN(64, value), true));
  }

  double(field: number, value: number): this {
    return this.fixedWidth(field, WIRE.fixed64, 8, (view) => view.setFloat64(0, value, true));
  }

  fixed32(field: number, value: number): this {
    return this.fixedWidth(field, WIRE.fixed32, 4, (view) => view.setUint32(0, value, true));
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE.lengthDelimited).rawVarint(BigInt(value.length));
    for (const byte of value) this.chunks.push(byte);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  message(field: number, value: ProtobufWriter): this {
    return this.bytes(field, value.finish());
  }

  finish(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from(this.chunks);
  }

  /** A little-endian fixed-width field, its bytes written by `write`. */
  private fixedWidth(field: number, wireType: number, size: 4 | 8, write: (view: DataView) => void): this {
    const bytes = new Uint8Array(size);
    write(new DataView(bytes.buffer));
    this.tag(field, wireType);
    this.chunks.push(...bytes);
    return this;
  }

  private rawVarint(value: bigint): this {
    let rest = value;
    while (rest >= 0x80n) {
      this.chunks.push(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    this.chunks.push(Number(rest));
    return this;
  }
}
