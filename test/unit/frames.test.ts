import { describe, expect, it } from "vitest";
import { decodeTensors, encodeTensor, FrameError, rowsOf } from "../../src/protocol/frames.js";
import { sign, verify } from "../../src/protocol/signing.js";

describe("frame codec", () => {
  it("round-trips every dtype", () => {
    const cases = [
      { dtype: "float32", data: new Float32Array([1.5, -2, 3]) },
      { dtype: "float64", data: new Float64Array([1e-300, 2, 3]) },
      { dtype: "int32", data: new Int32Array([-1, 0, 7]) },
      { dtype: "int64", data: new BigInt64Array([-1n, 0n, 2n ** 40n]) },
      { dtype: "uint8", data: new Uint8Array([0, 255, 9]) },
      { dtype: "bool", data: new Uint8Array([1, 0, 1]) },
    ] as const;
    for (const c of cases) {
      const { desc, frame } = encodeTensor("t", { dtype: c.dtype, shape: [3], data: c.data });
      const back = decodeTensors([desc], [Buffer.from(frame)]).get("t")!;
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(c.data as ArrayLike<number | bigint>));
    }
  });
  it("copies unaligned frames and reads rows", () => {
    const raw = Buffer.alloc(1 + 4 * 8);
    const view = Buffer.from(new Float64Array([1, 2, 3, 4]).buffer);
    view.copy(raw, 1);
    const t = decodeTensors([{ name: "x", dtype: "float64", shape: [2, 2] }], [raw.subarray(1)]).get("x");
    expect(rowsOf(t)).toEqual([[1, 2], [3, 4]]);
  });
  it("rejects a length that disagrees with dtype and shape, and a missing frame", () => {
    expect(() => decodeTensors([{ name: "x", dtype: "float32", shape: [2, 2] }], [Buffer.alloc(15)])).toThrow(FrameError);
    expect(() => decodeTensors([{ name: "x", dtype: "float32", shape: [2] }], [])).toThrow(/1 tensors but 0 frames/);
  });
});

describe("signing", () => {
  const key = Buffer.from("k".repeat(64));
  it("verifies its own signature and rejects a changed frame or boundary", () => {
    const frames = [Buffer.from("ab"), Buffer.from("c")];
    const s = Buffer.from(sign(key, frames));
    expect(verify(key, s, frames)).toBe(true);
    expect(verify(key, s, [Buffer.from("a"), Buffer.from("bc")])).toBe(false);
    expect(verify(Buffer.from("other"), s, frames)).toBe(false);
  });
});
