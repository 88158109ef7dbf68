// The messages every interop run sends: text and binary at 0 B, 10 B, 64 KiB and 4 MiB
// (the same bytes as messages.py).
export const SIZES = [0, 10, 64 << 10, 4 << 20];

export function payload(size, seed) {
  const parts = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const part = Buffer.from(`herald interop ${seed} line ${i}; `);
    parts.push(part);
    length += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

export function* messages() {
  for (const [n, size] of SIZES.entries()) {
    yield [payload(size, n).toString(), payload(size, n + 100)];
  }
}
