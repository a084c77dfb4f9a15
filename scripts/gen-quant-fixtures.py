#!/usr/bin/env python3
"""Generate the realm-quant golden fixtures in tests/fixtures/quant/ from gguf-py.

    pip install numpy gguf==0.19.0
    python3 scripts/gen-quant-fixtures.py            # writes tests/fixtures/quant/

The output is deterministic (fixed seeds); rerunning must leave `git status` clean.
The file format is described in tests/fixtures/quant/README.md. The Rust tests read
the files directly and need no Python.

Dequantize fixtures hold random blocks (random bytes, with every scale field replaced by a
finite value of realistic magnitude plus a few edge values) and the f32 output of
`gguf.quants.dequantize`. For Q8_1 and Q8_K, which gguf-py cannot decode, the expected
output is computed below with the same numpy operations as ggml-quants.c
`dequantize_row_q8_0` / `dequantize_row_q8_K` (one f32 multiply per element).

Quantize fixtures hold f32 inputs (including rounding ties, zero, constant and
overflowing blocks) and the bytes of `gguf.quants.quantize` for every type gguf-py can
quantize that realm-quant implements.
"""

from __future__ import annotations

import argparse
import struct
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.constants import GGML_QUANT_SIZES
except ImportError:  # pragma: no cover
    sys.exit("needs the gguf package: pip install gguf==0.19.0")

GGUF_VERSION = "0.19.0"
MAGIC = b"RQFX"
VERSION = 1
KIND_DEQUANTIZE = 0
KIND_QUANTIZE = 1
BASE_SEED = 0x5EA1_2025

# gguf-py 0.19.0 still lists Q8_1 with the old f32 layout (4 + 4 + 32 bytes); ggml's
# block_q8_1 has been two ggml_half + 32 (36 bytes) since 2024. Use ggml's size.
BLOCK_SIZES: dict[T, tuple[int, int]] = {**GGML_QUANT_SIZES, T.Q8_1: (32, 2 + 2 + 32)}

# Byte offsets of the f16 scale fields in each block (ggml-common.h layouts).
F16_FIELDS: dict[T, tuple[int, ...]] = {
    T.Q4_0: (0,),
    T.Q4_1: (0, 2),
    T.Q5_0: (0,),
    T.Q5_1: (0, 2),
    T.Q8_0: (0,),
    T.Q8_1: (0, 2),
    T.Q2_K: (80, 82),
    T.Q3_K: (108,),
    T.Q4_K: (0, 2),
    T.Q5_K: (0, 2),
    T.Q6_K: (208,),
    T.Q8_K: (),
    T.IQ4_NL: (0,),
    T.IQ4_XS: (0,),
}
# Byte offsets of f32 scale fields.
F32_FIELDS: dict[T, tuple[int, ...]] = {T.Q8_K: (0,)}

DEQUANT_TYPES = [
    T.F32, T.F16, T.BF16,
    T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q8_1,
    T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K,
    T.IQ4_NL, T.IQ4_XS,
]
QUANT_TYPES = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]

# Edge scale values given to the first blocks: signed zeros, f16 subnormals, the smallest
# normal, exact small integers. All finite.
EDGE_F16 = [0.0, -0.0, 2.0**-24, 2.0**-14, 1.0, -3.5]


def ggml_name(t: T) -> str:
    """ggml's type name (`ggml_type_name`): lower case except the K of the k-quants."""
    name = t.name.lower()
    return name[:-2] + "_K" if name.endswith("_k") else name


def realistic_f16(rng: np.random.Generator, n: int) -> np.ndarray:
    mag = 10.0 ** rng.uniform(-4.0, -1.0, n)
    sign = np.where(rng.random(n) < 0.25, -1.0, 1.0)
    return (mag * sign).astype(np.float16)


def random_blocks(t: T, rng: np.random.Generator, n_blocks: int) -> np.ndarray:
    """Random bytes, with realistic scales; the first half of the blocks get edge scales."""
    _, type_size = BLOCK_SIZES[t]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for field, off in enumerate(F16_FIELDS[t]):
        vals = realistic_f16(rng, n_blocks)
        for b in range(n_blocks // 2):
            # Different edges on the two fields of one block (e.g. d = 0 with m = -0).
            vals[b] = np.float16(EDGE_F16[(b + 2 * field) % len(EDGE_F16)])
        raw[:, off : off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
    for off in F32_FIELDS.get(t, ()):
        mag = 10.0 ** rng.uniform(-6.0, -2.0, n_blocks)
        vals = (mag * np.where(rng.random(n_blocks) < 0.25, -1.0, 1.0)).astype(np.float32)
        vals[:3] = np.array([0.0, -1.0, 2.0**-130], dtype=np.float32)
        raw[:, off : off + 4] = vals.view(np.uint8).reshape(n_blocks, 4)
    return raw.reshape(-1)


def random_finite_bits(t: T, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random bit patterns of F32/F16/BF16 values, NaN and Inf replaced; first come edges."""
    if t == T.F32:
        exp_mask, sign = 0x7F80_0000, 0x8000_0000
    else:
        exp_mask, sign = (0x7C00 if t == T.F16 else 0x7F80), 0x8000
    bits = rng.integers(0, 2 * sign, size=n, dtype=np.int64)
    bits = np.where((bits & exp_mask) == exp_mask, bits ^ exp_mask, bits)
    # +0, -0, the smallest subnormals of both signs, the largest finite value.
    bits[:5] = [0, sign, 1, sign | 1, exp_mask - 1]
    dtype = np.uint32 if t == T.F32 else np.uint16
    return bits.astype(dtype).view(np.uint8)


def expected_dequant(t: T, data: np.ndarray) -> np.ndarray:
    if t == T.Q8_1:
        blocks = data.reshape(-1, 36)
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        qs = blocks[:, 4:].copy().view(np.int8).astype(np.float32)
        return (d * qs).reshape(-1)
    if t == T.Q8_K:
        blocks = data.reshape(-1, 292)
        d = blocks[:, 0:4].copy().view(np.float32)
        qs = blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
        return (d * qs).reshape(-1)
    out = gguf.quants.dequantize(data, t)
    return np.asarray(out, dtype=np.float32).reshape(-1)


def quant_inputs(t: T, rng: np.random.Generator) -> np.ndarray:
    if t in (T.F16, T.BF16):
        return float_quant_inputs(t, rng)
    blocks = [
        rng.normal(0.0, 0.05, 32),
        rng.normal(0.0, 10.0, 32),
        np.zeros(32),
        np.full(32, 0.75),
        # Exact rounding ties for d = 1 (Q8_0: amax 127; Q4_0/Q5_0 see max = -8 / -16).
        np.concatenate([np.arange(-15.5, 15.5, 1.0), [127.0]]),
        np.concatenate([np.arange(-7.5, 7.5, 1.0), [-8.0], np.arange(-7.5, 7.5, 1.0), [0.5]]),
        np.linspace(-1e-8, 3e-8, 32),  # scales in the f16 subnormal range
        np.concatenate([np.full(31, 1.0), [1e7]]),  # scale overflows f16 to inf
        # Tied largest magnitudes of opposite sign: the first one wins.
        np.array([0.1, 0.2, 0.3, -2.0] + [0.5] * 6 + [2.0] + [-0.25] * 21),
    ]
    while len(blocks) < 16:
        blocks.append(rng.uniform(-1.0, 1.0, 32) * 10.0 ** rng.uniform(-3, 2))
    return np.concatenate(blocks).astype(np.float32)


def float_quant_inputs(t: T, rng: np.random.Generator) -> np.ndarray:
    vals = [rng.normal(0.0, 1.0, 64).astype(np.float32)]
    if t == T.F16:
        # Midpoints between neighbouring f16 values (exact in f32): ties to even.
        a = rng.integers(0, 0x7BFF, 64, dtype=np.uint16)
        lo = a.view(np.float16).astype(np.float32)
        hi = (a + 1).view(np.float16).astype(np.float32)
        vals.append(((lo.astype(np.float64) + hi) / 2).astype(np.float32))
        vals.append(np.array([65504.0, 65520.0, 1e6, -1e6, 2.0**-25, 2.0**-26, 3e-8, -0.0], np.float32))
    else:
        bits = rng.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
        bits[:32] = (bits[:32] & np.uint32(0xFFFF_0000)) | np.uint32(0x8000)  # exact ties
        exp = np.uint32(0x7F80_0000)
        bits = np.where((bits & exp) == exp, bits & ~exp, bits).astype(np.uint32)
        vals.append(bits.view(np.float32))
        special = np.array([0x7FC0_0000, 0x7F80_0001, 0xFFC1_2345, 0x7F80_0000, 0x7F7F_FFFF], np.uint32)
        vals.append(special.view(np.float32))
    return np.concatenate(vals).astype(np.float32)


def write_fixture(path: Path, kind: int, t: T, blocks: np.ndarray, values: np.ndarray) -> None:
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8).reshape(-1)
    values = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    header = MAGIC + struct.pack("<5I", VERSION, kind, int(t), values.size, blocks.size)
    path.write_bytes(header + blocks.tobytes() + values.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=Path, default=root / "tests" / "fixtures" / "quant")
    args = parser.parse_args()
    if version("gguf") != GGUF_VERSION:
        sys.exit(f"needs gguf=={GGUF_VERSION}, found {version('gguf')}")
    args.out.mkdir(parents=True, exist_ok=True)
    np.seterr(over="ignore", invalid="ignore")

    for t in DEQUANT_TYPES:
        rng = np.random.default_rng(BASE_SEED + int(t))
        block_size, _ = BLOCK_SIZES[t]
        if block_size == 1:
            data = random_finite_bits(t, rng, 96)
        else:
            data = random_blocks(t, rng, 10 if block_size == 32 else 6)
        expected = expected_dequant(t, data)
        write_fixture(args.out / f"dequant-{ggml_name(t)}.bin", KIND_DEQUANTIZE, t, data, expected)

    for t in QUANT_TYPES:
        rng = np.random.default_rng(BASE_SEED + 1000 + int(t))
        x = quant_inputs(t, rng)
        q = np.asarray(gguf.quants.quantize(x, t)).view(np.uint8).reshape(-1)
        write_fixture(args.out / f"quantize-{ggml_name(t)}.bin", KIND_QUANTIZE, t, q, x)

    # The type table as gguf-py knows it, to cross-check realm-quant's.
    lines = ["# id\tname\tblock_size\ttype_size  (gguf-py GGML_QUANT_SIZES)"]
    for t, (bs, ts) in sorted(GGML_QUANT_SIZES.items(), key=lambda kv: int(kv[0])):
        lines.append(f"{int(t)}\t{ggml_name(t)}\t{bs}\t{ts}")
    (args.out / "gguf-py-types.tsv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
