// The CPU backend's loops compiled for AVX2 give the bits of the same loops compiled for the x86-64 baseline
// (tensor/cpu/isa.h): every loop run through run_for_isa computes each value on its own, so the vector width
// must not show in any result. Both sets run here, one after the other, wherever the CPU has AVX2.
#include <gtest/gtest.h>

#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tensor/cpu/isa.h"
#include "tensor/cpu/libm_expf.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/model_step.h"

namespace effnet {
namespace {

// The bit patterns of the values (so that -0 and +0 differ, and NaNs compare).
std::vector<uint64_t> bits(const std::vector<double>& values) {
  std::vector<uint64_t> out(values.size());
  std::memcpy(out.data(), values.data(), values.size() * sizeof(double));
  return out;
}

// Runs f once with each instruction set and returns both results' bits, baseline first; restores the set in
// use.
template <class F>
std::vector<std::vector<uint64_t>> with_each_isa(F f) {
  const cpu::Isa in_use = cpu::cpu_isa();
  std::vector<std::vector<uint64_t>> out;
  for (cpu::Isa isa : {cpu::Isa::Baseline, cpu::Isa::Avx2}) {
    cpu::set_cpu_isa(isa);
    out.push_back(bits(f()));
  }
  cpu::set_cpu_isa(in_use);
  return out;
}

std::vector<double> concat(std::vector<std::vector<double>> parts) {
  std::vector<double> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

class CpuIsa : public testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2: only the baseline loops run here";
  }
};

// Odd plane sizes, so that every vector loop has a remainder; float32 and float64.
TEST_F(CpuIsa, BatchNormSiluGivesTheSameBits) {
  for (DType dtype : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto runs = with_each_isa([&] {
      manual_seed(31);
      const Tensor x = mul(randn({3, 5, 23, 17}), 2.0).to(dtype).requires_grad_();
      const Tensor gamma = randn({5}).to(dtype).requires_grad_(), beta = randn({5}).to(dtype).requires_grad_();
      Tensor rm = zeros({5}, dtype), rv = ones({5}, dtype);
      const Tensor y = batch_norm_silu(x, gamma, beta, rm, rv, true, 0.1, 1e-5);
      sum(mul(y, randn(y.shape()).to(dtype))).backward();
      const Tensor eval = batch_norm_silu(x.detach(), gamma.detach(), beta.detach(), rm, rv, false, 0.1, 1e-5);
      return concat({y.to_vector(), x.grad().to_vector(), gamma.grad().to_vector(), beta.grad().to_vector(),
                     eval.to_vector()});
    });
    EXPECT_EQ(runs[1], runs[0]);
  }
}

// Sigmoid, SiLU and SiLU's gradient take libm's exp for a block of 256 elements of a contiguous run first,
// then the rest of the formula as a vector loop (tensor/cpu/elementwise.cpp): they must give the bits of the
// one element at a time loop that a strided view takes, with either instruction set. Lengths: under one
// block, one block, and several blocks with each of the last block's eight vector remainders; values where
// the sigmoid saturates or exp overflows among them.
TEST_F(CpuIsa, SigmoidAndSiluGiveTheBitsOfTheScalarLoop) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (int64_t n : {5, 256, 4097, 4098, 4099, 4100, 4101, 4102, 4103, 4104}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dtype) << ", " << n << " elements");
      manual_seed(41);
      std::vector<double> values = mul(randn({n}), 8.0).to_vector();
      const std::vector<double> extremes{0.0, -0.0, 30.0, -30.0, 100.0, -100.0, 1000.0, -1000.0};
      for (size_t i = 0; i < extremes.size(); ++i) values[(300 * i + 2) % values.size()] = extremes[i];
      const Tensor upstream = randn({n}).to(dtype);
      // Returns sigmoid(x), silu(x) and silu's gradient, from a contiguous x or from every other element of a
      // tensor twice as long (the strided loop).
      auto run = [&](bool strided) {
        Tensor leaf, x;
        if (strided) {
          std::vector<double> spread(static_cast<size_t>(2 * n), 3.0);
          for (int64_t i = 0; i < n; ++i) spread[static_cast<size_t>(2 * i)] = values[static_cast<size_t>(i)];
          leaf = from_vector(spread, {2 * n}, TensorOptions(dtype)).requires_grad_();
          x = leaf.slice(0, 0, 2 * n, 2);
        } else {
          leaf = from_vector(values, {n}, TensorOptions(dtype)).requires_grad_();
          x = leaf;
        }
        const Tensor s = sigmoid(x.detach()), y = silu(x);
        sum(mul(y, upstream)).backward();
        const Tensor grad = strided ? leaf.grad().slice(0, 0, 2 * n, 2) : leaf.grad();
        return concat({s.to_vector(), y.to_vector(), grad.to_vector()});
      };
      const auto contiguous = with_each_isa([&] { return run(false); });
      const auto strided = with_each_isa([&] { return run(true); });
      EXPECT_EQ(contiguous[0], strided[0]);
      EXPECT_EQ(contiguous[1], strided[1]);
      EXPECT_EQ(strided[0], strided[1]);
    }
  }
}

// libm_expf (tensor/cpu/libm_expf.h), glibc's expf as a vector loop, must give expf's bits: every 4,099th
// float bit pattern, the two values that tell FMA contractions apart, and the edges of glibc's other paths.
// On the reference platform (glibc 2.36, a CPU with AVX2 and FMA) the copy must be the one in use; elsewhere
// libm_expf may fall back to calling expf, which passes trivially.
TEST_F(CpuIsa, LibmExpfGivesExpfsBits) {
#if defined(__GLIBC__)
  __builtin_cpu_init();
  if (std::string(gnu_get_libc_version()) == "2.36" && __builtin_cpu_supports("fma") &&
      cpu::cpu_isa() == cpu::Isa::Avx2) {
    EXPECT_TRUE(cpu::libm_expf_copy_usable()) << "the check against glibc 2.36's expf failed";
  }
#endif
  std::vector<float> x;
  auto add_bits = [&x](uint32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    x.push_back(f);
  };
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 4099) add_bits(static_cast<uint32_t>(b));
  for (float edge : {0.0f, -0.0f, 88.0f, -88.0f, 0x1.62e42ep6f, 0x1.62e430p6f, 89.0f, -0x1.9d1d9ep6f, -0x1.9fe368p6f,
                     -104.0f, -150.0f, 0x1.04845ep+5f, -0x1.f8cbb2p+5f, 1e-40f, -1e-40f,
                     std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                     std::numeric_limits<float>::quiet_NaN()}) {
    x.push_back(edge);
  }
  std::vector<float> out(x.size());
  cpu::libm_expf(x.data(), out.data(), static_cast<int64_t>(x.size()));
  int64_t differ = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float libm = ::expf(x[i]);
    if (std::memcmp(&libm, &out[i], sizeof libm) != 0 && ++differ <= 5) {
      ADD_FAILURE() << "expf(" << std::hexfloat << x[i] << ") is " << libm << ", libm_expf gave " << out[i];
    }
  }
  EXPECT_EQ(differ, 0) << "of " << x.size() << " values";
}

// The batch norm's sums must stay out of the AVX2 copy: with gamma 0, dz is the same multiple of dy all over
// the channel, and two huge values of opposite sign in dy make grad_beta = sum dz depend on the order of
// the sum (a wider reduction gives another answer).
TEST_F(CpuIsa, BatchNormSumsDoNotDependOnTheVectorWidth) {
  const auto runs = with_each_isa([] {
    std::vector<double> dy(64);
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = 1 + 0.001 * static_cast<double>(i);
    dy[0] = 1e20;
    dy[4] = -1e20;
    const Tensor x = randn({1, 1, 1, 64}), gamma = zeros({1}).requires_grad_();
    const Tensor beta = full({1}, 0.5).requires_grad_();
    Tensor rm = zeros({1}), rv = ones({1});
    const Tensor y = batch_norm_silu(x, gamma, beta, rm, rv, true, 0.1, 1e-5);
    y.backward(from_vector(dy, y.shape()));
    return beta.grad().to_vector();
  });
  EXPECT_EQ(runs[1], runs[0]);
}

TEST_F(CpuIsa, DepthwiseConvolutionGivesTheSameBits) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t dilation : {1, 2}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " stride " + std::to_string(stride) + " dilation " +
                     std::to_string(dilation));
        const auto runs = with_each_isa([&] {
          manual_seed(32);
          Conv2dGeometry g;
          g.pad_h = g.pad_w = 2 * dilation;
          g.stride_h = g.stride_w = stride;
          g.dilation_h = g.dilation_w = dilation;
          g.groups = 6;
          const Tensor x = randn({2, 6, 37, 29}).to(dtype).requires_grad_();
          const Tensor w = randn({6, 1, 5, 5}).to(dtype).requires_grad_();
          const Tensor y = conv2d(x, w, Tensor(), g);
          sum(mul(y, randn(y.shape()).to(dtype))).backward();
          return concat({y.to_vector(), x.grad().to_vector(), w.grad().to_vector()});
        });
        EXPECT_EQ(runs[1], runs[0]);
      }
    }
  }
}

// A whole training step of a reduced B0, unfused and fused.
TEST_F(CpuIsa, EfficientNetStepGivesTheSameBits) {
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "fused" : "unfused");
    const auto runs = with_each_isa([&] {
      EfficientNetOptions options = test::reduced_b0();
      options.fused = fused;
      const test::StepResult r = test::train_step(Device::cpu(), options, std::nullopt);
      return concat({r.logits, r.grads});
    });
    EXPECT_EQ(runs[1], runs[0]);
  }
}

}  // namespace
}  // namespace effnet
