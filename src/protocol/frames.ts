import { endianness } from "node:os";
import type { DType, TensorDesc } from "./messages.js";

/** The frame codec: tensors travel as raw little-endian C-contiguous bytes next to a JSON header. */

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

const ITEM: Record<DType, { size: number; make: (b: ArrayBuffer, off: number, n: number) => TypedArray }> = {
  float32: { size: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  float64: { size: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  int32: { size: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  int64: { size: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  uint8: { size: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  bool: { size: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
};

if (endianness() !== "LE") throw new Error("ddst's frame codec assumes a little-endian host");

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

export const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function encodeTensor(name: string, t: Tensor): { desc: TensorDesc; frame: Buffer } {
  const n = numelOf(t.shape);
  if (t.data.length !== n) throw new FrameError(`tensor ${name}: ${t.data.length} elements for shape [${t.shape}]`);
  return {
    desc: { name, dtype: t.dtype, shape: [...t.shape] },
    frame: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  };
}

/** Turns the binary frames after a header into named tensors, checking counts and byte lengths. */
export function decodeTensors(descs: readonly TensorDesc[], frames: readonly Buffer[]): Map<string, Tensor> {
  if (descs.length !== frames.length)
    throw new FrameError(`header names ${descs.length} tensors but ${frames.length} frames came`);
  const out = new Map<string, Tensor>();
  descs.forEach((d, i) => {
    const f = frames[i]!;
    const item = ITEM[d.dtype];
    const n = numelOf(d.shape);
    if (f.byteLength !== n * item.size)
      throw new FrameError(`tensor ${d.name}: ${f.byteLength} bytes, expected ${n * item.size} for ${d.dtype}[${d.shape}]`);
    // Copy when the frame is not aligned for its element type (typed arrays require alignment).
    const aligned = f.byteOffset % item.size === 0 ? f : Buffer.from(f);
    const buf = aligned.buffer instanceof ArrayBuffer ? aligned.buffer : new Uint8Array(aligned).buffer;
    out.set(d.name, { dtype: d.dtype, shape: [...d.shape], data: item.make(buf, aligned.byteOffset, n) });
  });
  return out;
}

/** Rows of a 2-D float tensor as plain arrays (probe and loss tables). */
export function rowsOf(t: Tensor | undefined): number[][] {
  if (!t) return [];
  const [rows = 0, cols = 1] = t.shape;
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) out.push(Array.from(t.data.subarray(r * cols, (r + 1) * cols) as Float64Array, Number));
  return out;
}
