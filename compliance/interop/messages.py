"""The messages every interop run sends: text and binary at 0 B, 10 B, 64 KiB and 4 MiB."""

SIZES = [0, 10, 64 << 10, 4 << 20]


def payload(size, seed):
    """Compressible but not trivial bytes: a repeating sentence with a counter."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += f"herald interop {seed} line {i}; ".encode()
        i += 1
    return bytes(out[:size])


def messages():
    for n, size in enumerate(SIZES):
        yield payload(size, n).decode(), payload(size, n + 100)
