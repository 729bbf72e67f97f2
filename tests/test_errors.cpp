// Error messages: every failure is an effnet::Error whose message names the op and the offending shapes,
// dtypes or devices, so that a user can tell from the message alone what went wrong.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

// Success when `f` throws an effnet::Error whose message contains every one of `parts`; otherwise a failure
// that prints the message (or says that nothing, or something else, was thrown).
template <class F>
::testing::AssertionResult throws_error_containing(F&& f, std::initializer_list<std::string_view> parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    std::vector<std::string_view> missing;
    for (std::string_view part : parts) {
      if (message.find(part) == std::string::npos) missing.push_back(part);
    }
    if (missing.empty()) return ::testing::AssertionSuccess();
    ::testing::AssertionResult failure = ::testing::AssertionFailure();
    failure << "the message\n    \"" << message << "\"\n  lacks";
    for (std::string_view part : missing) failure << " \"" << part << "\"";
    return failure;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-effnet exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

TEST(Errors, HelperRejectsNoThrowAndMissingParts) {
  // The helper itself must be able to fail.
  EXPECT_FALSE(throws_error_containing([] {}, {}));
  EXPECT_FALSE(throws_error_containing([] { EFFNET_FAIL("add: something"); }, {"add", "[2, 3]"}));
  EXPECT_FALSE(throws_error_containing([] { throw std::runtime_error("add"); }, {"add"}));
  EXPECT_TRUE(throws_error_containing([] { EFFNET_FAIL("add: [2, 3]"); }, {"add", "[2, 3]"}));
}

TEST(Errors, BroadcastMismatchNamesOpAndShapes) {
  Tensor a = zeros({2, 3}), b = zeros({4, 5});
  EXPECT_TRUE(throws_error_containing([&] { add(a, b); }, {"add", "[2, 3]", "[4, 5]"}));
  EXPECT_TRUE(throws_error_containing([&] { mul(a, b); }, {"mul", "[2, 3]", "[4, 5]"}));
  EXPECT_TRUE(throws_error_containing([&] { a - b; }, {"sub", "[2, 3]", "[4, 5]"}));
}

TEST(Errors, DtypeMismatchNamesBothDtypes) {
  Tensor a = zeros({2}), b = zeros({2}, kFloat64);
  EXPECT_TRUE(throws_error_containing([&] { add(a, b); }, {"add", "float32", "float64"}));
  EXPECT_TRUE(throws_error_containing([&] { matmul(zeros({2, 2}), zeros({2, 2}, kFloat64)); },
                                      {"matmul", "float32", "float64"}));
  EXPECT_TRUE(throws_error_containing([&] { a.add_(b); }, {"add_", "float32", "float64"}));
}

TEST(Errors, MatmulInnerSizeMismatchNamesBothShapes) {
  EXPECT_TRUE(throws_error_containing([] { matmul(zeros({2, 3}), zeros({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]"}));
  EXPECT_TRUE(throws_error_containing([] { matmul(zeros({3}), zeros({3, 2})); }, {"matmul", "[3]"}));
}

TEST(Errors, OutOfRangeDimNamesOpAndRange) {
  Tensor t = zeros({2, 3});
  EXPECT_TRUE(throws_error_containing([&] { sum(t, {2}); }, {"sum", "dim 2", "-2 to 1"}));
  EXPECT_TRUE(throws_error_containing([&] { t.transpose(0, -3); }, {"transpose", "dim -3", "-2 to 1"}));
  EXPECT_TRUE(throws_error_containing([&] { t.select(5, 0); }, {"select", "dim 5", "-2 to 1"}));
  EXPECT_TRUE(throws_error_containing([&] { softmax(t, 2); }, {"softmax", "dim 2", "-2 to 1"}));
  EXPECT_TRUE(throws_error_containing([&] { t.unsqueeze(4); }, {"unsqueeze", "dim 4", "-3 to 2"}));
  EXPECT_TRUE(throws_error_containing([&] { t.size(2); }, {"size", "dim 2"}));
}

TEST(Errors, IndexOutOfRangeNamesTheSize) {
  EXPECT_TRUE(throws_error_containing([] { zeros({2, 3}).select(1, 3); }, {"select", "index 3", "size 3"}));
}

TEST(Errors, ViewWithTwoMinusOnes) {
  Tensor t = zeros({2, 3});
  EXPECT_TRUE(throws_error_containing([&] { t.view({-1, -1}); }, {"view", "-1", "[-1, -1]"}));
  EXPECT_TRUE(throws_error_containing([&] { t.reshape({-1, 2, -1}); }, {"reshape", "-1"}));
}

TEST(Errors, ViewWithTheWrongElementCount) {
  EXPECT_TRUE(throws_error_containing([] { zeros({2, 3}).view({4}); }, {"view", "[2, 3]", "[4]"}));
  EXPECT_TRUE(throws_error_containing([] { zeros({2, 3}).reshape({4, -1}); }, {"reshape", "[2, 3]", "[4, -1]"}));
}

TEST(Errors, ViewOfANonViewableTensorSuggestsReshape) {
  Tensor t = zeros({2, 3}).transpose(0, 1);
  EXPECT_TRUE(throws_error_containing([&] { t.view({6}); }, {"view", "[3, 2]", "[6]", "reshape"}));
}

TEST(Errors, ItemOfAMultiElementTensor) {
  EXPECT_TRUE(throws_error_containing([] { zeros({2, 3}).item(); }, {"item", "[2, 3]", "6 elements"}));
  EXPECT_TRUE(throws_error_containing([] { zeros({0}).item(); }, {"item", "0 elements"}));
}

TEST(Errors, BackwardOfATensorThatDoesNotRequireGrad) {
  Tensor loss = zeros({3}).sum();
  EXPECT_TRUE(throws_error_containing([&] { loss.backward(); }, {"backward", "does not require grad"}));
}

TEST(Errors, BackwardOfANonScalarWithoutAGradient) {
  Tensor x = ones({3});
  x.requires_grad_();
  Tensor y = mul(x, 2.0);
  EXPECT_TRUE(throws_error_containing([&] { y.backward(); }, {"backward", "[3]", "not a single value"}));
}

TEST(Errors, RequiresGradOnANonLeaf) {
  Tensor x = ones({2});
  x.requires_grad_();
  Tensor y = mul(x, 2.0);
  EXPECT_TRUE(throws_error_containing([&] { y.requires_grad_(); }, {"requires_grad_", "mul", "leaves"}));
  EXPECT_TRUE(throws_error_containing([] { zeros({2}, kInt64).requires_grad_(); },
                                      {"requires_grad_", "int64", "not floating point"}));
}

TEST(Errors, InPlaceOnALeafThatRequiresGrad) {
  Tensor x = ones({2});
  x.requires_grad_();
  ASSERT_TRUE(autograd::grad_enabled());
  EXPECT_TRUE(throws_error_containing([&] { x.fill_(3.0); }, {"fill_", "[2]", "requires grad", "NoGradGuard"}));
  EXPECT_TRUE(throws_error_containing([&] { x.mul_(2.0); }, {"mul_", "requires grad"}));
  EXPECT_TRUE(throws_error_containing([&] { x.add_(ones({2})); }, {"add_", "requires grad"}));
  EXPECT_TRUE(throws_error_containing([&] { x.copy_(zeros({2})); }, {"copy_", "requires grad"}));
  EXPECT_TRUE(throws_error_containing([&] { x.uniform_(); }, {"uniform_", "requires grad"}));
  EXPECT_EQ(x.to_vector(), (std::vector<double>{1, 1}));  // nothing was written

  {
    autograd::NoGradGuard no_grad;
    EXPECT_NO_THROW(x.fill_(3.0));
    EXPECT_NO_THROW(x.mul_(2.0));
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_EQ(x.to_vector(), (std::vector<double>{6, 6}));
  EXPECT_TRUE(throws_error_containing([&] { x.fill_(0.0); }, {"fill_"}));  // refused again after the guard
}

TEST(Errors, DeviceParse) {
  EXPECT_TRUE(throws_error_containing([] { Device::parse("gpu"); }, {"'gpu'", "cpu", "cuda", "cuda:N"}));
  EXPECT_TRUE(throws_error_containing([] { Device::parse("cuda:"); }, {"'cuda:'"}));
  EXPECT_TRUE(throws_error_containing([] { Device::parse("cuda:x"); }, {"'cuda:x'"}));
  EXPECT_TRUE(throws_error_containing([] { Device::parse("CPU"); }, {"'CPU'"}));
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
}

// Only CPU-only builds have this test (a skip in a CUDA build would fail scripts/device_check.sh).
#if !defined(EFFNET_WITH_CUDA)
TEST(Errors, CudaTensorInABuildWithoutCuda) {
  EXPECT_TRUE(throws_error_containing([] { zeros({2}, Device::cuda()); }, {"cuda:0", "without CUDA"}));
  EXPECT_TRUE(throws_error_containing([] { ones({2}).cuda(); }, {"cuda:0", "without CUDA"}));
  TensorOptions pinned;
  pinned.pinned = true;
  EXPECT_TRUE(throws_error_containing([&] { empty({2}, pinned); }, {"pinned", "without CUDA"}));
}
#endif

TEST(Errors, MiscellaneousArgumentChecks) {
  Tensor t = zeros({2, 3});
  EXPECT_TRUE(throws_error_containing([&] { t.expand({4, 3, 5}); }, {"expand", "[2, 3]", "[4, 3, 5]"}));
  EXPECT_TRUE(throws_error_containing([&] { t.permute({0}); }, {"permute", "[2, 3]"}));
  EXPECT_TRUE(throws_error_containing([&] { t.permute({1, 1}); }, {"permute", "repeated"}));
  EXPECT_TRUE(throws_error_containing([&] { t.slice(0, 0, 2, 0); }, {"slice", "step"}));
  EXPECT_TRUE(throws_error_containing([&] { t.squeeze(0); }, {"squeeze", "size 2"}));
  EXPECT_TRUE(throws_error_containing([&] { t.data<double>(); }, {"data<float64>", "float32"}));
  EXPECT_TRUE(throws_error_containing([] { from_vector({1, 2, 3}, {2, 2}); }, {"from_vector", "[2, 2]", "3 values"}));
  EXPECT_TRUE(throws_error_containing([] { zeros({2, -1}); }, {"[2, -1]"}));
  EXPECT_TRUE(throws_error_containing([] { zeros({2}, kInt64).uniform_(); }, {"uniform_", "int64"}));
  EXPECT_TRUE(throws_error_containing([] { Tensor().shape(); }, {"undefined"}));
}

TEST(Errors, CopyShapeMismatchNamesCopy) {
  Tensor dst = zeros({2, 3});
  // Regression: the failing check used to be the one inside expand() (copy_ expands its source), so the
  // message began with "expand:" and never named copy_, the op the user called.
  EXPECT_TRUE(throws_error_containing([&] { dst.copy_(zeros({4})); }, {"copy_", "[4]", "[2, 3]"}));
}

}  // namespace
}  // namespace effnet
