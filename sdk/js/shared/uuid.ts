/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, 12 bits that keep
 * ids created in the same millisecond ordered, the variant, 62 random bits.
 * Uses crypto.getRandomValues (browsers, Node >= 19 as a global); never
 * crypto.randomUUID, which older browsers and insecure origins lack.
 */

let lastMs = -1;
let seq = 0;

function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c && typeof c.getRandomValues === 'function') {
    c.getRandomValues(bytes);
  } else {
    // Last resort for exotic runtimes without Web Crypto: not
    // cryptographically strong, but messageIds only need to be unique.
    for (let i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  return bytes;
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push((i + 0x100).toString(16).slice(1));

export function uuidv7(now: number = Date.now()): string {
  const b = randomBytes(16);
  let ms = now;
  if (ms <= lastMs) {
    // Same millisecond (or the clock went back): keep the last timestamp and
    // bump the 12-bit sequence so ids stay monotonic.
    ms = lastMs;
    seq++;
    if (seq > 0xfff) {
      ms = lastMs + 1;
      seq = b[7] & 0x3f;
    }
  } else {
    seq = b[7] & 0x3f; // random start, leaving room to count up
  }
  lastMs = ms;
  b[0] = Math.floor(ms / 0x10000000000) & 0xff;
  b[1] = Math.floor(ms / 0x100000000) & 0xff;
  b[2] = (ms >>> 24) & 0xff;
  b[3] = (ms >>> 16) & 0xff;
  b[4] = (ms >>> 8) & 0xff;
  b[5] = ms & 0xff;
  b[6] = 0x70 | ((seq >>> 8) & 0x0f);
  b[7] = seq & 0xff;
  b[8] = 0x80 | (b[8] & 0x3f);
  let out = '';
  for (let i = 0; i < 16; i++) {
    out += HEX[b[i]];
    if (i === 3 || i === 5 || i === 7 || i === 9) out += '-';
  }
  return out;
}
