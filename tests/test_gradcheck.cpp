// Checks of the checker: it must pass correct gradients and fail wrong ones.
#include <gtest/gtest.h>

#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

using Grads = std::vector<Tensor>;
using autograd::gradcheck;

Tensor random_leaf(const Shape& shape, uint64_t seed) {
  manual_seed(seed);
  Tensor t = randn(shape, kFloat64);
  t.requires_grad_();
  return t;
}

// y = x^2 as one node, with the given backward.
Tensor square_with(const Tensor& x, double slope) {
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = x * x;
  }
  autograd::record("square", {x}, {y}, [x = x.detach(), slope](Grads&& g) { return Grads{g[0] * x * slope}; });
  return y;
}

TEST(Gradcheck, PassesACorrectBackward) {
  Tensor x = random_leaf({3, 4}, 1);
  const auto r = gradcheck([&] { return square_with(x, 2.0); }, {x});
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 12);
}

TEST(Gradcheck, FailsADeliberatelyWrongBackward) {
  Tensor x = random_leaf({3, 4}, 1);
  const auto r = gradcheck([&] { return square_with(x, 1.0); }, {x});  // d(x^2)/dx is 2x, not x
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.report.find("analytic"), std::string::npos) << r.report;
}

TEST(Gradcheck, RandomProjectionCatchesWhatAPlainSumMisses) {
  // softmax's outputs always sum to 1, so the gradient of sum(softmax(x)) is zero: a backward that
  // returns zeros passes a plain-sum check. The random cotangent exposes it.
  Tensor x = random_leaf({2, 5}, 2);
  auto broken_softmax = [&] {
    Tensor y;
    {
      autograd::NoGradGuard no_grad;
      y = softmax(x, 1);
    }
    autograd::record("broken_softmax", {x}, {y}, [x = x.detach()](Grads&&) { return Grads{zeros_like(x)}; });
    return y;
  };
  EXPECT_FALSE(gradcheck(broken_softmax, {x}).ok);
}

TEST(Gradcheck, ChecksEveryInputIncludingParameters) {
  Tensor x = random_leaf({4, 3}, 3), w = random_leaf({2, 3}, 4), b = random_leaf({2}, 5);
  const auto r = gradcheck([&] { return add(matmul(x, w.transpose(0, 1)), b); }, {x, w, b});
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 12 + 6 + 2);
  // A wrong gradient for the bias alone is caught.
  auto wrong_bias = [&] {
    Tensor y = matmul(x, w.transpose(0, 1));
    Tensor out;
    {
      autograd::NoGradGuard no_grad;
      out = add(y, b);
    }
    autograd::record("bad_bias", {y, b}, {out}, [](Grads&& g) { return Grads{g[0], sum(g[0], {0}) * 0.5}; });
    return out;
  };
  EXPECT_FALSE(gradcheck(wrong_bias, {x, w, b}).ok);
}

TEST(Gradcheck, ReseedsStochasticOpsBeforeEveryEvaluation) {
  // A dropout-like mask drawn from the default generator inside f: without re-seeding, every
  // finite-difference evaluation would see a different mask.
  Tensor x = random_leaf({20}, 6);
  auto dropout_like = [&] { return mul(x, gt(rand({20}, kFloat64), full({20}, 0.5, kFloat64))) * 2.0; };
  const auto r = gradcheck(dropout_like, {x});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(Gradcheck, SkipsKinksWhenAsked) {
  Tensor x = from_vector({-1.0, 0.0, 2.0}, {3}, kFloat64);
  x.requires_grad_();
  EXPECT_FALSE(gradcheck([&] { return relu(x); }, {x}).ok) << "relu at exactly 0 has no derivative";
  autograd::GradcheckOptions options;
  options.skip_kinks = true;
  const auto r = gradcheck([&] { return relu(x); }, {x}, options);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.checked, 2);
}

TEST(Gradcheck, SamplesElementsOfLargeInputs) {
  Tensor x = random_leaf({100}, 7);
  autograd::GradcheckOptions options;
  options.max_elements_per_input = 5;
  const auto r = gradcheck([&] { return tanh(x); }, {x}, options);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 5);
}

TEST(Gradcheck, RefusesFloat32) {
  Tensor x = randn({3});
  x.requires_grad_();
  EXPECT_THROW(gradcheck([&] { return x * 2.0; }, {x}), Error);
}

TEST(Gradcheck, LeavesTheDefaultGeneratorAsItFoundIt) {
  manual_seed(99);
  const double expected = rand({1}).item();
  manual_seed(99);
  Tensor x = random_leaf({3}, 8);  // reseeds to 8 ...
  manual_seed(99);                 // ... so seed again and run the checker
  gradcheck([&] { return exp(x); }, {x});
  EXPECT_EQ(rand({1}).item(), expected);
}

TEST(GradcheckCuda, PassesAndFailsOnTheGpuToo) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  Tensor x = random_leaf({3, 4}, 1);
  Tensor xc = x.detach().cuda();
  xc.requires_grad_();
  EXPECT_TRUE(gradcheck([&] { return square_with(xc, 2.0); }, {xc}).ok);
  EXPECT_FALSE(gradcheck([&] { return square_with(xc, 1.0); }, {xc}).ok);
}

}  // namespace
}  // namespace effnet
