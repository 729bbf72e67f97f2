// The tape: accumulation, no-grad mode, release of saved tensors, custom nodes, autograd::grad.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/ops.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

using Grads = std::vector<Tensor>;

Tensor leaf(const std::vector<double>& v, const Shape& shape) {
  Tensor t = from_vector(v, shape, kFloat64);
  t.requires_grad_();
  return t;
}

TEST(Autograd, ChainRuleThroughSeveralOps) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = sum(mul(x, x) * 3.0);  // dy/dx = 6x
  y.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{6, 12, 18}));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1, 2}, {2});
  sum(x * 2.0).backward();
  sum(x * 2.0).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{4, 4}));
}

TEST(Autograd, ATensorUsedTwiceSumsItsGradients) {
  Tensor x = leaf({3}, {1});
  Tensor a = x * 2.0, b = exp(x);
  sum(a * b + a).backward();  // d/dx (2x e^x + 2x) = 2e^x + 2x e^x + 2
  EXPECT_NEAR(x.grad().item(), 2 * std::exp(3.0) + 6 * std::exp(3.0) + 2, 1e-9);
}

TEST(Autograd, BackwardWithAnOutputGradient) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = x * 2.0;
  y.backward(from_vector({1, 10, 100}, {3}, kFloat64));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{2, 20, 200}));
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = x * 2.0;
    EXPECT_FALSE(autograd::grad_enabled());
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_TRUE((x * 2.0).requires_grad());
}

TEST(Autograd, SavedTensorsAreReleasedAfterBackward) {
  Tensor x = from_vector({1, 2}, {2}, kFloat64);  // saved by mul for the gradient of w
  Tensor w = leaf({3, 4}, {2});
  std::weak_ptr<Storage> x_storage = x.storage();
  Tensor y = sum(mul(x, w));
  x = Tensor();
  EXPECT_FALSE(x_storage.expired()) << "the tape must hold what backward needs";
  y.backward();
  EXPECT_TRUE(x_storage.expired()) << "backward must drop saved tensors";
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{1, 2}));
}

// A dropout or drop-path mask wants no gradient: mul then keeps the mask (for the activation's gradient)
// but not the activation, which only the mask's gradient would need.
TEST(Autograd, MulKeepsAnOperandOnlyForTheOtherOnesGradient) {
  Tensor w = leaf({3, 4}, {2});
  Tensor h = mul(w, 3.0);  // an activation (a scalar multiply keeps nothing of its own)
  Tensor mask = from_vector({0, 2}, {2}, kFloat64);
  const std::weak_ptr<Storage> h_storage = h.storage(), mask_storage = mask.storage();
  Tensor y = sum(mul(h, mask));
  h = Tensor();
  mask = Tensor();
  EXPECT_TRUE(h_storage.expired()) << "nothing needs the activation for backward";
  EXPECT_FALSE(mask_storage.expired()) << "the activation's gradient needs the mask";
  y.backward();
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{0, 6}));
}

TEST(Autograd, SecondBackwardNeedsRetainGraph) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(x.grad().to_vector()[0], 2 * std::exp(1.0), 1e-12);
  try {
    y.backward();
    FAIL() << "a third backward through freed saved tensors must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
  }
}

TEST(Autograd, GradReturnsWithoutTouchingDotGrad) {
  Tensor x = leaf({1, 2}, {2});
  Tensor w = leaf({5, 7}, {2});
  Tensor y = sum(mul(x, w));
  const std::vector<Tensor> g = autograd::grad({y}, {ones({}, kFloat64)}, {x});
  EXPECT_EQ(g[0].to_vector(), (std::vector<double>{5, 7}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, LeafGradientIsItsOwnContiguousTensor) {
  // The gradient of expand is a broadcast view; the leaf must get a real tensor it can update in place.
  Tensor x = leaf({1, 2}, {2, 1});
  sum(x.expand({2, 3})).backward();
  EXPECT_TRUE(x.grad().is_contiguous());
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{3, 3}));
  sum(x.expand({2, 3})).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{6, 6}));
}

TEST(Autograd, CustomNodeWithHandWrittenBackward) {
  // y = x^3 registered as one node, the way fused layers (conv, batch norm) register themselves.
  Tensor x = leaf({1, 2}, {2});
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = x * x * x;
  }
  autograd::record("cube", {x}, {y}, [x = x.detach()](Grads&& g) { return Grads{g[0] * x * x * 3.0}; });
  EXPECT_EQ(y.grad_fn()->name(), "cube");
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{3, 12}));
}

TEST(Autograd, MultiOutputNodeWithOneOutputUnused) {
  Tensor x = leaf({1, 2}, {2});
  Tensor a, b;
  {
    autograd::NoGradGuard no_grad;
    a = x * 2.0;
    b = x * 3.0;
  }
  autograd::record("split", {x}, {a, b}, [](Grads&& g) {
    Tensor total;
    if (g[0].defined()) total = g[0] * 2.0;
    if (g[1].defined()) total = total.defined() ? total + g[1] * 3.0 : g[1] * 3.0;
    return Grads{total};
  });
  sum(b).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{3, 3}));
}

TEST(Autograd, BranchWithoutGradientDoesNotStallTheRest) {
  // c receives gradient from a, but b's edge into c carries nothing: c must still run.
  Tensor x = leaf({2}, {1});
  Tensor c = x * 5.0;
  Tensor a = c * 1.0;
  Tensor b = c * 1.0;
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = a + b;
  }
  autograd::record("first_only", {a, b}, {y}, [](Grads&& g) { return Grads{g[0], Tensor()}; });
  sum(y).backward();
  EXPECT_EQ(x.grad().item(), 5.0);
}

TEST(Autograd, IntegerResultsDoNotRequireGrad) {
  Tensor x = leaf({1, 5, 2}, {3});
  EXPECT_FALSE(argmax(x, 0).requires_grad());
  EXPECT_FALSE(gt(x, x * 0.5).requires_grad());
}

TEST(AutogradCuda, GradientsFlowAcrossDevices) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = sum(exp(x.cuda()).cpu() * 2.0);
  y.backward();
  const std::vector<double> g = x.grad().to_vector();
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(g[i], 2 * std::exp(i + 1.0), 1e-12);
  EXPECT_FALSE(x.grad().is_cuda());
}

}  // namespace
}  // namespace effnet
