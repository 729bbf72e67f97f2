// Every op case of op_cases.cpp as (1) a float64 gradient check on each device and (2) an fp32
// CPU<->CUDA parity check of the forward result and of the input gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace effnet::test {
namespace {

// Seeded inputs of a case, drawn in float64 on the CPU, then moved and converted.
std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, Device device, uint64_t seed) {
  manual_seed(seed);
  std::vector<Tensor> inputs;
  for (size_t k = 0; k < c.shapes.size(); ++k) {
    const bool positive = k < c.domains.size() && c.domains[k] == Domain::Positive;
    Tensor x = positive ? rand(c.shapes[k], kFloat64) * 1.5 + 0.5 : randn(c.shapes[k], kFloat64);
    x = x.to(dtype).to(device);
    if (c.differentiable) x.requires_grad_();
    inputs.push_back(x);
  }
  return inputs;
}

std::string case_name(const testing::TestParamInfo<OpCase>& info) { return info.param.name; }

class OpGrad : public testing::TestWithParam<OpCase> {};
class OpGradCuda : public testing::TestWithParam<OpCase> {};
class OpParityCuda : public testing::TestWithParam<OpCase> {};

void run_gradcheck(const OpCase& c, Device device) {
  const std::vector<Tensor> inputs = make_inputs(c, kFloat64, device, 7);
  autograd::GradcheckOptions options;
  options.skip_kinks = c.kinks;
  const autograd::GradcheckResult r = autograd::gradcheck([&] { return c.fn(inputs); }, inputs, options);
  EXPECT_TRUE(r.ok) << c.name << " on " << device.str() << ":\n" << r.report;
  EXPECT_GT(r.checked, 0) << r.report;
}

TEST_P(OpGrad, MatchesFiniteDifferencesOnCpu) { run_gradcheck(GetParam(), Device::cpu()); }

TEST_P(OpGradCuda, MatchesFiniteDifferencesOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  run_gradcheck(GetParam(), Device::cuda(0));
}

// |got - want| <= atol + rtol |want| elementwise; reports the worst element.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const double excess = std::abs(g[i] - w[i]) - (atol + rtol * std::abs(w[i]));
    if (excess > worst_excess || std::isnan(g[i]) != std::isnan(w[i])) {
      worst_excess = std::isnan(g[i]) != std::isnan(w[i]) ? INFINITY : excess;
      worst = i;
    }
  }
  EXPECT_LE(worst_excess, 0.0) << what << ": element " << worst << " is " << g[worst] << ", expected " << w[worst];
}

TEST_P(OpParityCuda, Float32MatchesCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const OpCase& c = GetParam();
  const std::vector<Tensor> on_cpu = make_inputs(c, kFloat32, Device::cpu(), 11);
  const std::vector<Tensor> on_gpu = make_inputs(c, kFloat32, Device::cuda(0), 11);
  const Tensor y_cpu = c.fn(on_cpu), y_gpu = c.fn(on_gpu);
  EXPECT_TRUE(y_gpu.is_cuda());
  expect_close(y_gpu, y_cpu, 1e-5, 1e-6, c.name + " forward");
  if (!c.differentiable) return;
  manual_seed(13);
  const Tensor cotangent = randn(y_cpu.shape());
  y_cpu.backward(cotangent);
  y_gpu.backward(cotangent.cuda());
  for (size_t k = 0; k < on_cpu.size(); ++k) {
    expect_close(on_gpu[k].grad(), on_cpu[k].grad(), 1e-5, 1e-6, c.name + " gradient of input " + std::to_string(k));
  }
}

INSTANTIATE_TEST_SUITE_P(AllOps, OpGrad, testing::ValuesIn(differentiable_op_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(AllOps, OpGradCuda, testing::ValuesIn(differentiable_op_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(AllOps, OpParityCuda, testing::ValuesIn(op_cases()), case_name);

// Values checked by hand, so the CPU reference itself is pinned down (the gradient checks only prove
// that forward and backward agree with each other).
TEST(OpValues, ElementwiseAndReductions) {
  const Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64);
  const Tensor b = from_vector({10, 20, 30}, {3}, kFloat64);
  EXPECT_EQ((a + b).to_vector(), (std::vector<double>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(sum(a, {0}).to_vector(), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(sum(a, {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(max(a, {1}).to_vector(), (std::vector<double>{3, 6}));
  EXPECT_DOUBLE_EQ(mean(a).item(), 3.5);
  EXPECT_DOUBLE_EQ(var(a).item(), 3.5);        // sum of squared deviations 17.5 / 5
  EXPECT_DOUBLE_EQ(var(a, {}, 0).item(), 17.5 / 6);
  EXPECT_EQ(argmax(from_vector({1, 7, 7, 2}, {4}), 0).item(), 1);  // first of the ties
  EXPECT_EQ(gt(a, from_vector({3}, {1}, kFloat64)).to_vector(), (std::vector<double>{0, 0, 0, 1, 1, 1}));
  EXPECT_NEAR(sigmoid(from_vector({0}, {1})).item(), 0.5, 1e-7);
  EXPECT_NEAR(silu(from_vector({1}, {1})).item(), 1.0 / (1.0 + std::exp(-1.0)), 1e-7);
  EXPECT_EQ(relu(from_vector({-1, 0, 2}, {3})).to_vector(), (std::vector<double>{0, 0, 2}));
}

TEST(OpValues, MatmulAndSoftmax) {
  const Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_vector({1, 0, 0, 1, 1, 1}, {3, 2});
  EXPECT_EQ(matmul(a, b).to_vector(), (std::vector<double>{4, 5, 10, 11}));
  EXPECT_EQ(matmul(a.transpose(0, 1).contiguous().transpose(0, 1), b).to_vector(),
            (std::vector<double>{4, 5, 10, 11}));
  const std::vector<double> s = softmax(from_vector({0, std::log(3.0)}, {2}), 0).to_vector();
  EXPECT_NEAR(s[0], 0.25, 1e-7);
  EXPECT_NEAR(s[1], 0.75, 1e-7);
  // Large logits must not overflow: the max is subtracted first.
  const std::vector<double> l = log_softmax(from_vector({1000, 1000}, {2}), 0).to_vector();
  EXPECT_NEAR(l[0], -std::log(2.0), 1e-5);
  EXPECT_EQ(cat({a, b.transpose(0, 1)}, 0).to_vector(),
            (std::vector<double>{1, 2, 3, 4, 5, 6, 1, 0, 1, 0, 1, 1}));
}

TEST(OpValues, LargeParallelLoopsAgreeWithSmallOnes) {
  // Big enough for the OpenMP paths (chunks, many outputs, one output).
  manual_seed(3);
  const Tensor x = randn({64, 1000}, kFloat64);
  const std::vector<double> v = x.to_vector();
  double total = 0;
  for (double e : v) total += e;
  EXPECT_NEAR(sum(x).item(), total, 1e-9);
  const std::vector<double> rows = sum(x, {1}).to_vector();
  for (int r = 0; r < 64; ++r) {
    double row = 0;
    for (int c = 0; c < 1000; ++c) row += v[r * 1000 + c];
    EXPECT_NEAR(rows[r], row, 1e-9);
  }
  const std::vector<double> doubled = (x.transpose(0, 1) * 2.0).transpose(0, 1).to_vector();
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(doubled[i], 2 * v[i]);
}

}  // namespace
}  // namespace effnet::test
