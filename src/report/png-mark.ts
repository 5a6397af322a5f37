/** ddst's PNG plots carry a tEXt chunk "Software: ddst report", as its HTML reports carry a generator tag: a
 * report replaces only files it wrote, never a picture of the user's that happens to have the same name. */

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const TEXT = Buffer.from("Software\0ddst report", "latin1");

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 as PNG chunks use it (zlib's; Node's zlib.crc32 needs 20.15). */
function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

export const isPng = (bytes: Buffer): boolean => bytes.subarray(0, 8).equals(SIGNATURE);

/** The PNG with the mark after its IHDR chunk (the first; 8 + 4 + 4 + 13 + 4 bytes from the start). */
export function markPng(png: Buffer): Buffer {
  if (!isPng(png)) throw new Error("not a PNG");
  const afterHeader = 8 + 25;
  return Buffer.concat([png.subarray(0, afterHeader), chunk("tEXt", TEXT), png.subarray(afterHeader)]);
}

/** Whether `head` (a file's first bytes) is a PNG that a ddst report wrote: the whole chunk, length included, so
 * that a picture whose text says more ("ddst report, edited") is not taken for one. */
export const isMarkedPng = (head: Buffer): boolean => isPng(head) && head.subarray(0, 200).includes(chunk("tEXt", TEXT));
