"""Reference float16 and bfloat16 casts from PyTorch, for tensor/half.h (tests/test_half.cpp).

Run (any Python with torch and safetensors; a fixture tool, never a build or test dependency):

    python tools/reference/cast_fixtures.py            # writes tests/fixtures/cast_fixtures.safetensors

What it writes:
    f32.in [N] F32         edge cases (zeros, infinities, NaNs of both signs and with payloads, the float16
                           limits and the midpoints around them, subnormals of both formats, ties to even)
                           and 4000 seeded values spread over float32's exponents
    f32.to_f16 [N] F16     f32.in.to(torch.float16)
    f32.to_bf16 [N] BF16   f32.in.to(torch.bfloat16)
    f64.in [M] F64         doubles whose rounding to 16 bits differs when done in one step or through float32
    f64.to_f16, f64.to_bf16   f64.in.to(torch.float16 / torch.bfloat16)
"""
import os
import struct

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "cast_fixtures.safetensors")


def float_from_bits(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def edge_floats():
    values = [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), 65504.0, 65519.99, 65520.0, 65536.0, -65520.0,
              2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.5, 2.0 ** -26, 2.0 ** -15 * 1.5,
              1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 3.4028234663852886e38,
              1e-45, 1.17549435e-38, 1.0e-40, 0.1, -0.3, 1.0 / 3.0]
    # NaNs: quiet, signalling, negative, with payloads in the bits float16 and bfloat16 keep or drop.
    nan_bits = [0x7FC00000, 0x7F800001, 0xFFC00000, 0x7FC12345, 0x7FA00000, 0xFF800100]
    floats = torch.tensor(values, dtype=torch.float32)
    nans = torch.tensor(nan_bits, dtype=torch.int64).to(torch.int32).view(torch.float32)
    return torch.cat([floats, nans])


def main():
    generator = torch.Generator().manual_seed(0)
    mantissas = torch.rand(4000, generator=generator, dtype=torch.float64) + 1.0
    exponents = torch.randint(-30, 20, (4000,), generator=generator).to(torch.float64)
    signs = torch.randint(0, 2, (4000,), generator=generator).to(torch.float64) * 2 - 1
    spread = (signs * mantissas * torch.pow(2.0, exponents)).to(torch.float32)
    f32 = torch.cat([edge_floats(), spread])
    f64 = torch.tensor([1.0 + 2.0 ** -11 + 2.0 ** -40, 1.0 + 2.0 ** -8 + 2.0 ** -40, 1.0 + 2.0 ** -11 - 2.0 ** -40,
                        65519.999999, 2.0 ** -25 + 2.0 ** -60, 0.1, 1e300, -1e-300], dtype=torch.float64)
    save_file({
        "f32.in": f32, "f32.to_f16": f32.to(torch.float16), "f32.to_bf16": f32.to(torch.bfloat16),
        "f64.in": f64, "f64.to_f16": f64.to(torch.float16), "f64.to_bf16": f64.to(torch.bfloat16),
    }, OUT)
    print(f"wrote {OUT}: {f32.numel()} float32 and {f64.numel()} float64 inputs")


if __name__ == "__main__":
    main()
