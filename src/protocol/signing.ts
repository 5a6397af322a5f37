import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** HMAC-SHA256 over every frame after the signature, each fed as an 8-byte little-endian length and its
 * bytes, so that frame boundaries are part of what is signed (docs/protocol.md). */
export function sign(key: Buffer, frames: readonly Buffer[]): string {
  const mac = createHmac("sha256", key);
  const len = Buffer.alloc(8);
  for (const f of frames) {
    len.writeBigUInt64LE(BigInt(f.byteLength));
    mac.update(len);
    mac.update(f);
  }
  return mac.digest("hex");
}

export function verify(key: Buffer, signature: Buffer, frames: readonly Buffer[]): boolean {
  const expected = Buffer.from(sign(key, frames), "ascii");
  return signature.byteLength === expected.byteLength && timingSafeEqual(signature, expected);
}

/** A fresh per-worker key: 32 random bytes, written as 64 hex characters. */
export const newKey = () => randomBytes(32).toString("hex");
