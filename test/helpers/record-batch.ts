/**
 * Kafka record batches (message format v2, magic 2) built by hand, for a test that writes into a stopped broker's log
 * segment what no producer can send: e.g. a batch whose compression attribute names a codec no client can decode
 * (a broker's LogValidator refuses it on produce, so it can only get into a log by another way).
 *
 * The layout is Kafka's DefaultRecordBatch / DefaultRecord (KIP-98): every field big-endian, the record fields
 * zig-zag varints; the CRC is CRC-32C over everything from the attributes field to the end of the batch.
 */
import { crc32c } from '@aws-crypto/crc32c';

export interface BatchRecord {
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
}

export interface BatchOptions {
  baseOffset: number;
  partitionLeaderEpoch: number;
  /** the attributes field's low 3 bits: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd; 5 to 7 name no codec */
  codec: number;
  records: BatchRecord[];
}

// DefaultRecordBatch: baseOffset (8) + batchLength (4) + partitionLeaderEpoch (4) + magic (1) + crc (4)
const CRC_OFFSET = 17;
const ATTRIBUTES_OFFSET = 21;
const HEADER_SIZE = 61;

function varint(n: number): Buffer {
  // zig-zag (ByteUtils.writeVarint / writeVarlong); every value here fits a safe integer
  let z = BigInt(n) >= 0n ? BigInt(n) * 2n : -BigInt(n) * 2n - 1n;
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

function record(r: BatchRecord, offsetDelta: number, timestampDelta: number): Buffer {
  const field = (b: Buffer | null) => (b === null ? [varint(-1)] : [varint(b.length), b]);
  const body = Buffer.concat([
    Buffer.from([0]), // record attributes: unused
    varint(timestampDelta),
    varint(offsetDelta),
    ...field(r.key),
    ...field(r.value),
    varint(0), // no headers
  ]);
  return Buffer.concat([varint(body.length), body]);
}

/**
 * One batch. Its payload is the records in the uncompressed layout whatever `codec` says: a reader that honours the
 * attributes must decode them with that codec, so with an unknown one it cannot read them at all.
 */
export function recordBatch(opts: BatchOptions): Buffer {
  if (!Number.isInteger(opts.codec) || opts.codec < 0 || opts.codec > 7) throw new Error(`codec ${opts.codec} does not fit 3 bits`);
  const first = opts.records[0]!.timestamp;
  const max = Math.max(...opts.records.map((r) => r.timestamp));
  const payload = Buffer.concat(opts.records.map((r, i) => record(r, i, r.timestamp - first)));
  const b = Buffer.alloc(HEADER_SIZE + payload.length);
  b.writeBigInt64BE(BigInt(opts.baseOffset), 0);
  b.writeInt32BE(b.length - 12, 8); // batchLength: the bytes after this field
  b.writeInt32BE(opts.partitionLeaderEpoch, 12);
  b.writeInt8(2, 16); // magic
  b.writeInt16BE(opts.codec, ATTRIBUTES_OFFSET); // codec; timestamp type CreateTime, not transactional, not control
  b.writeInt32BE(opts.records.length - 1, 23); // lastOffsetDelta
  b.writeBigInt64BE(BigInt(first), 27);
  b.writeBigInt64BE(BigInt(max), 35);
  b.writeBigInt64BE(-1n, 43); // producerId: none
  b.writeInt16BE(-1, 51); // producerEpoch
  b.writeInt32BE(-1, 53); // baseSequence
  b.writeInt32BE(opts.records.length, 57);
  payload.copy(b, HEADER_SIZE);
  b.writeUInt32BE(crc32c(b.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
  return b;
}

/**
 * The header fields of every batch in a log segment file (what a reader needs to append one more), and whether its
 * stored CRC is the CRC-32C of its bytes from the attributes on (as Kafka's DefaultRecordBatch.isValid checks).
 */
export function segmentBatches(segment: Buffer): { baseOffset: number; lastOffset: number; partitionLeaderEpoch: number; codec: number; crcValid: boolean }[] {
  const out = [];
  for (let pos = 0; pos + HEADER_SIZE <= segment.length;) {
    const length = segment.readInt32BE(pos + 8);
    if (length <= 0 || pos + 12 + length > segment.length) break; // preallocated tail or a partial write
    const baseOffset = Number(segment.readBigInt64BE(pos));
    out.push({
      baseOffset,
      lastOffset: baseOffset + segment.readInt32BE(pos + 23),
      partitionLeaderEpoch: segment.readInt32BE(pos + 12),
      codec: segment.readInt16BE(pos + ATTRIBUTES_OFFSET) & 0x7,
      crcValid: segment.readUInt32BE(pos + CRC_OFFSET) === crc32c(segment.subarray(pos + ATTRIBUTES_OFFSET, pos + 12 + length)),
    });
    pos += 12 + length;
  }
  return out;
}
