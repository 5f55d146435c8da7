// The wire format of docs/protocol.md: [4-byte big-endian header length][msgpack header][payload].
import { pack, unpack } from "msgpackr";
import { decompress } from "fzstd";

export type Header = Record<string, any>;

export function encode(header: Header, payload?: Uint8Array): Uint8Array<ArrayBuffer> {
  const h = pack(header) as Uint8Array;
  const out = new Uint8Array(4 + h.length + (payload ? payload.length : 0));
  new DataView(out.buffer).setUint32(0, h.length, false);
  out.set(h, 4);
  if (payload) out.set(payload, 4 + h.length);
  return out;
}

export function decode(frame: ArrayBuffer): [Header, Uint8Array] {
  const bytes = new Uint8Array(frame);
  if (bytes.length < 4) throw new Error(`frame of ${bytes.length} bytes`);
  const n = new DataView(frame).getUint32(0, false);
  if (4 + n > bytes.length) throw new Error(`header length ${n} exceeds the frame`);
  return [unpack(bytes.subarray(4, 4 + n)) as Header, bytes.subarray(4 + n)];
}

/** A zstd payload of `count` little-endian uint32 words (browsers are little-endian). */
export function words(payload: Uint8Array, count: number): Uint32Array {
  const raw = decompress(payload);
  if (raw.length !== count * 4) throw new Error(`payload holds ${raw.length} bytes, box needs ${count * 4}`);
  const aligned = raw.byteOffset % 4 === 0 ? raw : raw.slice();
  return new Uint32Array(aligned.buffer, aligned.byteOffset, count);
}

export function bytes(payload: Uint8Array, count: number): Uint8Array {
  const raw = decompress(payload);
  if (raw.length !== count) throw new Error(`payload holds ${raw.length} bytes, box needs ${count}`);
  return raw;
}
