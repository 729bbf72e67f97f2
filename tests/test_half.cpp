// float16 and bfloat16 (tensor/half.h): every bit pattern round-trips, rounding is to nearest with ties to
// even at the edges of both formats, PyTorch casts the same (tests/fixtures/cast_fixtures.safetensors,
// tools/reference/cast_fixtures.py), tensors cast, fill and backpropagate through casts, and CUDA casts
// give the CPU's bits.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "io/safetensors.h"
#include "tensor/half.h"
#include "tensor/ops.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

TEST(Half, EveryFloat16AndBFloat16RoundTripsThroughFloat32) {
  for (uint32_t bits = 0; bits <= 0xFFFFu; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    const float from_half = float16_bits_to_float(h), from_bfloat = bfloat16_bits_to_float(h);
    if (std::isnan(from_half)) {
      EXPECT_TRUE(std::isnan(float16_bits_to_float(float_to_float16_bits(from_half)))) << bits;
    } else {
      ASSERT_EQ(float_to_float16_bits(from_half), h) << "float16 " << bits << " = " << from_half;
    }
    if (std::isnan(from_bfloat)) {
      EXPECT_EQ(float_to_bfloat16_bits(from_bfloat), 0x7FC0u) << bits;
    } else {
      ASSERT_EQ(float_to_bfloat16_bits(from_bfloat), h) << "bfloat16 " << bits << " = " << from_bfloat;
    }
  }
  // Values, not only bits: the float16 extremes.
  EXPECT_EQ(float16_bits_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(float16_bits_to_float(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(float16_bits_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(float16_bits_to_float(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(float16_bits_to_float(0x3C00), 1.0f);
}

TEST(Half, RoundsToNearestWithTiesToEven) {
  const auto f16 = [](double v) { return float_to_float16_bits(static_cast<float>(v)); };
  const double ulp1 = std::ldexp(1.0, -10);  // float16's spacing at 1
  EXPECT_EQ(f16(1 + ulp1 / 2), 0x3C00u);                      // tie: 1 (even) wins over 1 + ulp
  EXPECT_EQ(f16(1 + 3 * ulp1 / 2), 0x3C02u);                  // tie: 1 + 2 ulp (even) wins over 1 + ulp
  EXPECT_EQ(f16(1 + ulp1 / 2 + std::ldexp(1.0, -20)), 0x3C01u);  // just above the tie
  EXPECT_EQ(f16(65504), 0x7BFFu);
  EXPECT_EQ(f16(65519.99), 0x7BFFu);                          // below the midpoint to 65536
  EXPECT_EQ(f16(65520), 0x7C00u);                             // the midpoint: to even, which is infinity
  EXPECT_EQ(f16(-1e6), 0xFC00u);
  EXPECT_EQ(f16(std::ldexp(1.0, -25)), 0x0000u);              // half the smallest subnormal: to even 0
  EXPECT_EQ(f16(std::ldexp(1.5, -25)), 0x0001u);
  EXPECT_EQ(f16(std::ldexp(3.0, -25)), 0x0002u);              // 1.5 subnormal units: to even 2
  EXPECT_EQ(f16(-std::ldexp(1.0, -26)), 0x8000u);             // negative zero keeps its sign
  EXPECT_EQ(f16(std::ldexp(1.0, -14) - std::ldexp(1.0, -26)), 0x0400u);  // rounds up into the normals
  EXPECT_EQ(f16(std::nan("")), 0x7E00u);
  EXPECT_EQ(f16(-std::numeric_limits<double>::infinity()), 0xFC00u);
  const auto bf16 = [](float v) { return float_to_bfloat16_bits(v); };
  EXPECT_EQ(bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80u);      // tie to even (1)
  EXPECT_EQ(bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82u);  // tie to even (1 + 2 ulp)
  EXPECT_EQ(bf16(std::numeric_limits<float>::max()), 0x7F80u);  // rounds up to infinity
  EXPECT_EQ(bf16(-std::numeric_limits<float>::denorm_min()), 0x8000u);
  EXPECT_EQ(bf16(-std::numeric_limits<float>::quiet_NaN()), 0x7FC0u);
}

// The bits PyTorch writes, compared through float32 (the fixture's 16-bit tensors are widened exactly on
// load); NaN bit patterns differ between PyTorch's own code paths (tensor/half.h), so NaNs compare as NaN.
void expect_casts_like_pytorch(const Tensor& in, const Tensor& expected, DType dtype, const std::string& what) {
  const std::vector<double> ours = in.to(dtype).to(kFloat32).to_vector();
  const std::vector<double> theirs = expected.to_vector();
  const std::vector<double> inputs = in.to_vector();
  ASSERT_EQ(ours.size(), theirs.size());
  int64_t differences = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const bool same = std::isnan(theirs[i]) ? std::isnan(ours[i]) : ours[i] == theirs[i] &&
                                                                       std::signbit(ours[i]) == std::signbit(theirs[i]);
    if (!same && ++differences <= 5) {
      ADD_FAILURE() << what << " of " << inputs[i] << ": effnet " << ours[i] << ", PyTorch " << theirs[i];
    }
  }
  EXPECT_EQ(differences, 0) << what;
}

TEST(Half, CastsLikePyTorch) {
  const safetensors::File f =
      safetensors::load(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/cast_fixtures.safetensors");
  expect_casts_like_pytorch(f.find("f32.in"), f.find("f32.to_f16"), kFloat16, "float32 -> float16");
  expect_casts_like_pytorch(f.find("f32.in"), f.find("f32.to_bf16"), kBFloat16, "float32 -> bfloat16");
  // Doubles round through float32 first, in both: 1 + 2^-11 + 2^-40 is a float16 tie once in float32.
  expect_casts_like_pytorch(f.find("f64.in"), f.find("f64.to_f16"), kFloat16, "float64 -> float16");
  expect_casts_like_pytorch(f.find("f64.in"), f.find("f64.to_bf16"), kBFloat16, "float64 -> bfloat16");
  EXPECT_EQ(f.find("f64.to_f16").to_vector()[0], 1.0);
}

TEST(Half, TensorsFillCastAndBackpropagate) {
  const Tensor x = from_vector({0.1, -2.5, 65519.0, 1e-8}, {2, 2}, kFloat32);
  const Tensor h = x.to(kFloat16);
  EXPECT_EQ(h.dtype(), kFloat16);
  EXPECT_EQ(h.shape(), x.shape());
  const std::vector<double> values = h.to_vector();
  EXPECT_EQ(values[0], static_cast<double>(float16_bits_to_float(float_to_float16_bits(0.1f))));
  EXPECT_EQ(values[1], -2.5);
  EXPECT_EQ(values[2], 65504.0);
  EXPECT_EQ(values[3], 0.0);  // 1e-8 < 2^-25: rounds to zero
  EXPECT_EQ(full({3}, 1.0 / 3.0, kBFloat16).to_vector()[2], static_cast<double>(bfloat16_bits_to_float(0x3EAB)));
  // Non-contiguous sources and int64 go through the same conversion.
  EXPECT_EQ(x.transpose(0, 1).to(kBFloat16).to_vector()[1], static_cast<double>(bfloat16_bits_to_float(
                                                                 float_to_bfloat16_bits(65519.0f))));
  EXPECT_EQ(from_vector({70000, -3}, {2}, kInt64).to(kFloat16).to_vector(),
            (std::vector<double>{std::numeric_limits<double>::infinity(), -3}));
  // Autograd: the cast's backward casts the gradient back to the source's dtype.
  const Tensor leaf = from_vector({1.5, -0.25}, {2}, kFloat32).requires_grad_();
  sum(mul(leaf.to(kBFloat16).to(kFloat32), 3.0)).backward();
  EXPECT_EQ(leaf.grad().dtype(), kFloat32);
  EXPECT_EQ(leaf.grad().to_vector(), (std::vector<double>{3, 3}));
  // Ops that have no 16-bit kernel say so, naming the op (arithmetic: tests/test_mixed_precision.cpp).
  const std::string error = test::error_of([&] { softmax(h, 1); });
  EXPECT_NE(error.find("softmax: dtype float16 is not supported"), std::string::npos) << error;
}

TEST(HalfCuda, CastsGiveTheCpuBits) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const safetensors::File f =
      safetensors::load(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/cast_fixtures.safetensors");
  for (const char* name : {"f32.in", "f64.in"}) {
    const Tensor in = f.find(name);
    for (DType dtype : {kFloat16, kBFloat16}) {
      SCOPED_TRACE(std::string(name) + " -> " + dtype_name(dtype));
      const Tensor cpu = in.to(dtype);
      const Tensor gpu = in.cuda().to(dtype);
      EXPECT_EQ(gpu.dtype(), dtype);
      const Tensor back = gpu.cpu();
      ASSERT_EQ(back.numel(), cpu.numel());
      EXPECT_EQ(std::memcmp(back.data_ptr(), cpu.data_ptr(), 2 * static_cast<size_t>(cpu.numel())), 0);
      // And back up: 16 bits to float32 on the GPU equals the CPU's.
      EXPECT_EQ(gpu.to(kFloat32).cpu().to_vector().size(), cpu.to(kFloat32).to_vector().size());
      const std::vector<double> a = gpu.to(kFloat32).cpu().to_vector(), b = cpu.to(kFloat32).to_vector();
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i;
      }
    }
  }
  EXPECT_EQ(full({4}, 0.1, TensorOptions(kFloat16, Device::cuda(0))).cpu().to_vector()[3],
            static_cast<double>(float16_bits_to_float(float_to_float16_bits(0.1f))));
}

}  // namespace
}  // namespace effnet
