// The losses of losses/: (1) parity with PyTorch through tests/fixtures/loss_fixtures.safetensors
// (tools/reference/loss_fixtures.py: F.cross_entropy with weights, smoothing and each reduction, focal loss,
// soft F1, on logits up to +-1e4), in float64 and float32, on the CPU and on CUDA; (2) a float64
// finite-difference gradient check of every loss on both devices; (3) an fp32 CPU<->CUDA parity test of the
// cross-entropy kernels, forward and backward; (4) class weights, the loss spec parser and error messages.
//
// Tolerances, |got - want| <= atol + rtol |want| per element: float64 against the fixtures rtol 1e-6,
// atol 1e-12; float32 against the (float64) fixtures rtol 1e-5, atol 1e-6, the logits being exact in float32
// (the fixture tool draws them so); float32 CUDA against float32 CPU rtol 1e-5, atol 1e-6, as tests/test_ops.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "io/safetensors.h"
#include "losses/class_weights.h"
#include "losses/loss_spec.h"
#include "losses/losses.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace effnet::test {
namespace {

const safetensors::File& fixtures() {
  static const safetensors::File file =
      safetensors::load(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/loss_fixtures.safetensors");
  return file;
}

Tensor fixture(const std::string& name) {
  const Tensor t = fixtures().find(name);
  EFFNET_CHECK(t.defined(), "loss_fixtures.safetensors has no tensor ", name,
               " (rerun tools/reference/loss_fixtures.py)");
  return t;
}

// |got - want| <= atol + rtol |want| elementwise; reports the worst element.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(got.numel(), want.numel()) << what << ": " << got.str() << " vs " << want.str();
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  size_t worst = 0;
  double worst_excess = -INFINITY;
  for (size_t i = 0; i < g.size(); ++i) {
    const double excess = std::isnan(g[i]) != std::isnan(w[i])
                              ? INFINITY
                              : std::abs(g[i] - w[i]) - (atol + rtol * std::abs(w[i]));
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  EXPECT_LE(worst_excess, 0.0) << what << ": element " << worst << " is " << g[worst] << ", expected "
                               << w[worst];
}

// Success when `f` throws an effnet::Error whose message contains every one of `parts`.
template <class F>
testing::AssertionResult throws_error_containing(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      if (message.find(part) == std::string::npos) {
        return testing::AssertionFailure() << "the message \"" << message << "\" lacks \"" << part << "\"";
      }
    }
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << "did not throw an effnet::Error";
}

// ---- parity with PyTorch

struct FixtureCase {
  std::string name;
  std::function<Tensor(const Tensor& logits, const Tensor& targets, const Tensor& weight, Reduction)> loss;
  std::vector<Reduction> reductions;
};

CrossEntropyOptions ce_options(const Tensor& weight, double smoothing, Reduction reduction) {
  CrossEntropyOptions o;
  o.weight = weight;
  o.label_smoothing = smoothing;
  o.reduction = reduction;
  return o;
}

FocalLossOptions focal_options(double gamma, const Tensor& weight, Reduction reduction) {
  FocalLossOptions o;
  o.gamma = gamma;
  o.weight = weight;
  o.reduction = reduction;
  return o;
}

std::vector<FixtureCase> fixture_cases() {
  using T = const Tensor&;
  const std::vector<Reduction> all{Reduction::Mean, Reduction::Sum, Reduction::None};
  const std::vector<Reduction> mean{Reduction::Mean};
  const double smoothing = 0.1;  // the fixture tool's
  return {
      {"ce_plain", [](T z, T t, T, Reduction r) { return cross_entropy(z, t, ce_options({}, 0, r)); }, all},
      {"ce_weighted", [](T z, T t, T w, Reduction r) { return cross_entropy(z, t, ce_options(w, 0, r)); },
       all},
      {"ce_smoothed",
       [=](T z, T t, T, Reduction r) { return cross_entropy(z, t, ce_options({}, smoothing, r)); }, all},
      {"ce_weighted_smoothed",
       [=](T z, T t, T w, Reduction r) { return cross_entropy(z, t, ce_options(w, smoothing, r)); }, all},
      {"focal_g2", [](T z, T t, T, Reduction r) { return focal_loss(z, t, focal_options(2, {}, r)); }, mean},
      {"focal_g2_weighted",
       [](T z, T t, T w, Reduction r) { return focal_loss(z, t, focal_options(2, w, r)); }, mean},
      {"focal_g5", [](T z, T t, T, Reduction r) { return focal_loss(z, t, focal_options(5, {}, r)); }, mean},
      {"focal_g5_weighted",
       [](T z, T t, T w, Reduction r) { return focal_loss(z, t, focal_options(5, w, r)); }, mean},
      {"soft_f1", [](T z, T t, T, Reduction) { return soft_f1_loss(z, t); }, mean},
  };
}

void expect_matches_torch(DType dtype, Device device) {
  const bool f64 = dtype == kFloat64;
  const double rtol = f64 ? 1e-6 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
  for (const std::string set : {"extreme", "batch"}) {
    const Tensor targets = fixture(set + ".targets").to(device);
    const Tensor weight = fixture(set + ".weight").to(dtype).to(device);
    const Tensor cotangent = fixture(set + ".cotangent").to(dtype).to(device);
    for (const FixtureCase& c : fixture_cases()) {
      for (Reduction r : c.reductions) {
        const std::string key = set + "." + c.name + "." + reduction_name(r);
        Tensor logits =
            fixture(set + ".logits").to(dtype).to(device).clone();  // a fresh leaf: no stale .grad
        logits.requires_grad_();
        const Tensor loss = c.loss(logits, targets, weight, r);
        EXPECT_EQ(loss.device(), device) << key;
        if (r == Reduction::None)
          loss.backward(cotangent);
        else
          loss.backward();
        expect_close(loss, fixture(key + ".loss"), rtol, atol, key + " loss on " + device.str());
        expect_close(logits.grad(), fixture(key + ".grad"), rtol, atol, key + " gradient on " + device.str());
      }
    }
  }
}

TEST(LossParity, MatchesTorchInFloat64OnCpu) { expect_matches_torch(kFloat64, Device::cpu()); }
TEST(LossParity, MatchesTorchInFloat32OnCpu) { expect_matches_torch(kFloat32, Device::cpu()); }

TEST(LossParityCuda, MatchesTorchInFloat64OnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  expect_matches_torch(kFloat64, Device::cuda(0));
}

TEST(LossParityCuda, MatchesTorchInFloat32OnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  expect_matches_torch(kFloat32, Device::cuda(0));
}

// ---- gradient checks in float64

struct GradCase {
  std::string name;
  Shape shape;
  std::vector<double> targets;
  std::function<Tensor(const Tensor& logits, const Tensor& targets, const Tensor& weight)> loss;
};

void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }
std::string grad_case_name(const testing::TestParamInfo<GradCase>& info) { return info.param.name; }

std::vector<GradCase> grad_cases() {
  using T = const Tensor&;
  const Shape small{6, 5};
  const std::vector<double> small_targets{0, 4, 2, 2, 1, 3};
  auto ce = [](double smoothing, bool weighted, Reduction r) {
    return
        [=](T z, T t, T w) { return cross_entropy(z, t, ce_options(weighted ? w : Tensor(), smoothing, r)); };
  };
  auto focal = [](double gamma, bool weighted, Reduction r) {
    return [=](T z, T t, T w) { return focal_loss(z, t, focal_options(gamma, weighted ? w : Tensor(), r)); };
  };
  LossOptions spec_options;
  spec_options.focal_gamma = 3;
  spec_options.label_smoothing = 0.2;
  return {
      {"ce_mean", small, small_targets, ce(0, false, Reduction::Mean)},
      {"ce_sum", small, small_targets, ce(0, false, Reduction::Sum)},
      {"ce_none", small, small_targets, ce(0, false, Reduction::None)},
      {"ce_weighted_mean", small, small_targets, ce(0, true, Reduction::Mean)},
      {"ce_smoothed_mean", small, small_targets, ce(0.2, false, Reduction::Mean)},
      {"ce_weighted_smoothed_mean", small, small_targets, ce(0.2, true, Reduction::Mean)},
      {"ce_weighted_smoothed_sum", small, small_targets, ce(0.2, true, Reduction::Sum)},
      {"ce_weighted_smoothed_none", small, small_targets, ce(0.2, true, Reduction::None)},
      // More classes than a warp has lanes: the CUDA kernel's lanes loop over the row.
      {"ce_wide_rows", {3, 70}, {0, 69, 33}, ce(0.1, true, Reduction::Mean)},
      {"focal_g2_mean", small, small_targets, focal(2, false, Reduction::Mean)},
      {"focal_g2_weighted_mean", small, small_targets, focal(2, true, Reduction::Mean)},
      {"focal_g0p5_none", small, small_targets, focal(0.5, false, Reduction::None)},
      {"focal_g5_weighted_sum", small, small_targets, focal(5, true, Reduction::Sum)},
      {"soft_f1", small, small_targets, [](T z, T t, T) { return soft_f1_loss(z, t); }},
      {"spec_ce_f1", small, small_targets,
       [=](T z, T t, T) { return WeightedLoss("ce:0.7+f1:0.3", spec_options)(z, t); }},
      {"spec_focal_ce_weighted", small, small_targets,
       [=](T z, T t, T w) {
         LossOptions o = spec_options;
         o.class_weights = w;
         return WeightedLoss("focal:1+ce:0.5", o)(z, t);
       }},
  };
}

class LossGrad : public testing::TestWithParam<GradCase> {};
class LossGradCuda : public testing::TestWithParam<GradCase> {};

void run_gradcheck(const GradCase& c, Device device) {
  manual_seed(5);
  Tensor logits = (randn(c.shape, kFloat64) * 2.0).to(device);
  logits.requires_grad_();
  const Tensor weight = (rand({c.shape[1]}, kFloat64) * 1.5 + 0.25).to(device);
  const Tensor targets = from_vector(c.targets, {c.shape[0]}, TensorOptions(kInt64, device));
  const autograd::GradcheckResult r =
      autograd::gradcheck([&] { return c.loss(logits, targets, weight); }, {logits});
  EXPECT_TRUE(r.ok) << c.name << " on " << device.str() << ":\n" << r.report;
  EXPECT_EQ(r.checked, logits.numel());
}

TEST_P(LossGrad, MatchesFiniteDifferencesOnCpu) { run_gradcheck(GetParam(), Device::cpu()); }

TEST_P(LossGradCuda, MatchesFiniteDifferencesOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  run_gradcheck(GetParam(), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(AllLosses, LossGrad, testing::ValuesIn(grad_cases()), grad_case_name);
INSTANTIATE_TEST_SUITE_P(AllLosses, LossGradCuda, testing::ValuesIn(grad_cases()), grad_case_name);

// ---- cross-entropy kernels, float32 CUDA against float32 CPU

struct ParityCase {
  std::string name;
  int64_t rows, classes;
  bool weighted;
  double smoothing;
  Reduction reduction;
};

void PrintTo(const ParityCase& c, std::ostream* os) { *os << c.name; }
std::string parity_case_name(const testing::TestParamInfo<ParityCase>& info) { return info.param.name; }

std::vector<ParityCase> parity_cases() {
  std::vector<ParityCase> cases;
  for (bool weighted : {false, true}) {
    for (double smoothing : {0.0, 0.1}) {
      for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        cases.push_back({std::string("b32c18_") + (weighted ? "weighted_" : "") +
                             (smoothing > 0 ? "smoothed_" : "") + reduction_name(r),
                         32, 18, weighted, smoothing, r});
      }
    }
  }
  cases.push_back({"wide_rows_c1000", 5, 1000, true, 0.1, Reduction::Mean});
  // More rows than the grid has warps (132 SMs x 32 blocks x 8 warps on an H100): the grid-stride loop.
  cases.push_back({"many_rows_none", 40000, 18, true, 0.1, Reduction::None});
  cases.push_back({"many_rows_mean", 40000, 18, true, 0.1, Reduction::Mean});
  return cases;
}

class CrossEntropyParityCuda : public testing::TestWithParam<ParityCase> {};

TEST_P(CrossEntropyParityCuda, Float32MatchesCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const ParityCase& c = GetParam();
  manual_seed(17);
  const Tensor logits = randn({c.rows, c.classes}) * 4.0;
  const Tensor weight = c.weighted ? rand({c.classes}) * 2.0 + 0.25 : Tensor();
  std::vector<double> target_values;
  for (int64_t i = 0; i < c.rows; ++i)
    target_values.push_back(static_cast<double>((i * 7 + i / 3) % c.classes));
  const Tensor targets = from_vector(target_values, {c.rows}, kInt64);
  const Tensor cotangent = c.reduction == Reduction::None ? randn({c.rows}) : Tensor();
  auto run = [&](Device device) {
    Tensor z = logits.detach().to(device);  // a leaf of its own on each device
    z.requires_grad_();
    const Tensor loss =
        cross_entropy(z, targets.to(device),
                      ce_options(c.weighted ? weight.to(device) : Tensor(), c.smoothing, c.reduction));
    loss.backward(cotangent.defined() ? cotangent.to(device) : Tensor());
    return std::make_pair(loss, z.grad());
  };
  const auto [loss_cpu, grad_cpu] = run(Device::cpu());
  const auto [loss_gpu, grad_gpu] = run(Device::cuda(0));
  EXPECT_TRUE(loss_gpu.is_cuda() && grad_gpu.is_cuda());
  expect_close(loss_gpu, loss_cpu, 1e-5, 1e-6, c.name + " loss");
  expect_close(grad_gpu, grad_cpu, 1e-5, 1e-6, c.name + " gradient");
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyParityCuda, testing::ValuesIn(parity_cases()), parity_case_name);

// ---- values and structure

TEST(CrossEntropy, HandComputedValues) {
  // Row 0: logits (0, ln 3), target 1: p = 3/4, loss ln(4/3). Row 1: (0, 0), target 0: ln 2.
  const Tensor z = from_vector({0, std::log(3.0), 0, 0}, {2, 2}, kFloat64);
  const Tensor t = from_vector({1, 0}, {2}, kInt64);
  EXPECT_NEAR(cross_entropy(z, t).item(), (std::log(4.0 / 3.0) + std::log(2.0)) / 2, 1e-12);
  // Weights (1, 3): mean = (3 ln(4/3) + 1 ln 2) / (3 + 1).
  const Tensor w = from_vector({1, 3}, {2}, kFloat64);
  EXPECT_NEAR(cross_entropy(z, t, ce_options(w, 0, Reduction::Mean)).item(),
              (3 * std::log(4.0 / 3.0) + std::log(2.0)) / 4, 1e-12);
  // Full smoothing: every class counts e / C = 1/2: row 0 (ln 4 + ln(4/3)) / 2, row 1 ln 2.
  EXPECT_NEAR(cross_entropy(z, t, ce_options({}, 1.0, Reduction::Sum)).item(),
              (std::log(4.0) + std::log(4.0 / 3.0)) / 2 + std::log(2.0), 1e-12);
}

TEST(CrossEntropy, IsOneTapeNodeOnTheLogits) {
  Tensor z = randn({4, 3}, kFloat64);
  z.requires_grad_();
  const Tensor weight = ones({3}, kFloat64);
  const Tensor loss =
      cross_entropy(z, from_vector({0, 1, 2, 0}, {4}, kInt64), ce_options(weight, 0.1, Reduction::Mean));
  ASSERT_TRUE(loss.grad_fn());
  EXPECT_EQ(loss.grad_fn()->name(), "cross_entropy");
  ASSERT_EQ(loss.grad_fn()->next_edges.size(), 1u);
  ASSERT_TRUE(loss.grad_fn()->next_edges[0].node);
  EXPECT_EQ(loss.grad_fn()->next_edges[0].node->name(), "AccumulateGrad");
  EXPECT_EQ(loss.dim(), 0);
}

TEST(CrossEntropy, MaskedClassWithoutSmoothingStaysFinite) {
  // A logit of -inf (a class masked out) must not turn the loss into 0 * inf.
  Tensor z = from_vector({1, -INFINITY, 0.5, 2, -INFINITY, 0}, {2, 3}, kFloat64);
  z.requires_grad_();
  const Tensor loss = cross_entropy(z, from_vector({0, 2}, {2}, kInt64));
  loss.backward();
  EXPECT_TRUE(std::isfinite(loss.item()));
  for (double g : z.grad().to_vector()) EXPECT_TRUE(std::isfinite(g));
}

TEST(FocalLoss, GammaZeroIsCrossEntropy) {
  const Tensor z = randn({5, 4}, kFloat64);
  const Tensor t = from_vector({3, 0, 1, 1, 2}, {5}, kInt64);
  const Tensor w = rand({4}, kFloat64) + 0.5;
  EXPECT_DOUBLE_EQ(focal_loss(z, t, focal_options(0, w, Reduction::Mean)).item(),
                   cross_entropy(z, t, ce_options(w, 0, Reduction::Mean)).item());
}

TEST(FocalLoss, SaturatedRowHasAFiniteGradientForGammaBelowOne) {
  // float32 row 0: every probability off the target underflows to 0.
  Tensor z = from_vector({200, 0, 0, 0.5, 0, 1}, {2, 3});
  z.requires_grad_();
  focal_loss(z, from_vector({0, 2}, {2}, kInt64), focal_options(0.5, {}, Reduction::Mean)).backward();
  for (double g : z.grad().to_vector()) EXPECT_TRUE(std::isfinite(g)) << z.grad().to_vector()[0];
}

TEST(OneHot, MarksTheTargetClass) {
  EXPECT_EQ(one_hot(from_vector({2, 0}, {2}, kInt64), 3, kFloat64).to_vector(),
            (std::vector<double>{0, 0, 1, 1, 0, 0}));
  EXPECT_TRUE(throws_error_containing([] { one_hot(from_vector({0}, {1}, kInt64), 3, kInt64); },
                                      {"one_hot", "float32 or float64", "int64"}));
}

TEST(SoftF1, HandComputedValue) {
  // Confident right answers (p = 1 - 2e-22) for classes 0 (twice) and 1: F1 = 2 n / (n + n + eps); class 2
  // is absent and predicted nowhere: 0.
  const Tensor z = from_vector({50, 0, 0, 0, 50, 0, 50, 0, 0}, {3, 3}, kFloat64);
  const double eps = SoftF1Options{}.epsilon;
  EXPECT_NEAR(soft_f1_loss(z, from_vector({0, 1, 0}, {3}, kInt64)).item(),
              1.0 - (4.0 / (4.0 + eps) + 2.0 / (2.0 + eps)) / 3.0, 1e-15);
}

TEST(LossErrors, BadTargetNamesIndexValueAndClassCount) {
  for (Device device : test_devices()) {
    const Tensor z = zeros({3, 4}, TensorOptions(kFloat32, device));
    const Tensor bad = from_vector({0, 4, 1}, {3}, TensorOptions(kInt64, device));
    EXPECT_TRUE(throws_error_containing([&] { cross_entropy(z, bad); },
                                        {"cross_entropy", "target 4", "index 1", "[0, 4)", "C = 4"}));
    const Tensor negative = from_vector({0, 1, -1}, {3}, TensorOptions(kInt64, device));
    EXPECT_TRUE(
        throws_error_containing([&] { focal_loss(z, negative); }, {"focal_loss", "target -1", "index 2"}));
    EXPECT_TRUE(throws_error_containing([&] { soft_f1_loss(z, bad); }, {"soft_f1_loss", "target 4"}));
  }
}

TEST(LossErrors, BadShapesDtypesAndOptions) {
  const Tensor z = zeros({3, 4});
  const Tensor t = from_vector({0, 1, 2}, {3}, kInt64);
  EXPECT_TRUE(throws_error_containing(
      [&] {
        cross_entropy(zeros({3, 4, 2}), t);
      },
      {"cross_entropy", "[N, C]"}));
  EXPECT_TRUE(throws_error_containing(
      [&] {
        cross_entropy(z, from_vector({0, 1}, {2}, kInt64));
      },
      {"cross_entropy", "int64", "[3]", "[2]"}));
  EXPECT_TRUE(throws_error_containing(
      [&] {
        cross_entropy(z, from_vector({0, 1, 2}, {3}));
      },
      {"cross_entropy", "int64", "float32"}));
  EXPECT_TRUE(throws_error_containing([&] { cross_entropy(z, t, ce_options(ones({3}), 0, Reduction::Mean)); },
                                      {"cross_entropy", "class weights [4]"}));
  EXPECT_TRUE(throws_error_containing(
      [&] { cross_entropy(z, t, ce_options(ones({4}, kFloat64), 0, Reduction::Mean)); },
      {"cross_entropy", "class weights", "float64"}));
  EXPECT_TRUE(throws_error_containing([&] { cross_entropy(z, t, ce_options({}, 1.5, Reduction::Mean)); },
                                      {"cross_entropy", "label_smoothing", "1.5"}));
  EXPECT_TRUE(throws_error_containing([&] { focal_loss(z, t, focal_options(-1, {}, Reduction::Mean)); },
                                      {"focal_loss", "gamma", "-1"}));
  EXPECT_TRUE(
      throws_error_containing([&] { soft_f1_loss(z, t, SoftF1Options{0}); }, {"soft_f1_loss", "epsilon"}));
  EXPECT_TRUE(throws_error_containing(
      [&] {
        cross_entropy(zeros({0, 4}), from_vector({}, {0}, kInt64));
      },
      {"cross_entropy", "N, C >= 1"}));
}

TEST(LossErrorsCuda, TargetsOnAnotherDevice) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  EXPECT_TRUE(throws_error_containing(
      [] {
        cross_entropy(zeros({2, 3}, Device::cuda(0)), from_vector({0, 1}, {2}, kInt64));
      },
      {"cross_entropy", "different devices"}));
}

// ---- class weights

TEST(ClassWeights, InverseFrequencyMatchesScikitLearnBalanced) {
  const std::vector<double> counts_d = fixture("class_weights.counts").to_vector();
  const std::vector<int64_t> counts(counts_d.begin(), counts_d.end());
  const std::vector<double> want = fixture("class_weights.balanced").to_vector();
  const std::vector<double> got = class_weights_from_counts(counts);
  ASSERT_EQ(got.size(), want.size());
  for (size_t c = 0; c < got.size(); ++c) EXPECT_NEAR(got[c], want[c], 1e-12 * want[c]) << "class " << c;
  const std::vector<double> soft = class_weights_from_counts(counts, ClassWeightOptions{0.5, 2.0});
  for (size_t c = 0; c < got.size(); ++c)
    EXPECT_NEAR(soft[c], 2.0 * std::sqrt(want[c]), 1e-12) << "class " << c;
}

TEST(ClassWeights, CountsAndErrors) {
  EXPECT_EQ(count_classes(from_vector({2, 0, 2, 2}, {4}, kInt64), 4), (std::vector<int64_t>{1, 0, 3, 0}));
  EXPECT_EQ(class_weights_from_counts({10, 30}), (std::vector<double>{2.0, 2.0 / 3.0}));
  EXPECT_TRUE(throws_error_containing(
      [] {
        class_weights_from_counts({5, 0, 3});
      },
      {"class 1", "0 samples"}));
  EXPECT_TRUE(throws_error_containing(
      [] {
        count_classes(from_vector({0, 5}, {2}, kInt64), 3);
      },
      {"count_classes", "label 5", "index 1", "[0, 3)"}));
  EXPECT_TRUE(throws_error_containing(
      [] {
        class_weights_from_counts({1, 2}, ClassWeightOptions{1, 0});
      },
      {"scale"}));
}

// ---- loss specs

TEST(LossSpec, ParsesNamesAndWeights) {
  const std::vector<LossTerm> terms = parse_loss_spec(" ce:0.7 + f1 : 0.3 ");
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[0].name, "ce");
  EXPECT_DOUBLE_EQ(terms[0].weight, 0.7);
  EXPECT_EQ(terms[1].name, "f1");
  EXPECT_DOUBLE_EQ(terms[1].weight, 0.3);
  const std::vector<LossTerm> single = parse_loss_spec("focal");
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].name, "focal");
  EXPECT_DOUBLE_EQ(single[0].weight, 1.0);
  EXPECT_EQ(WeightedLoss("ce:0.7+f1:0.3", {}).str(), "0.7 ce + 0.3 f1");
}

TEST(LossSpec, RejectsBadSpecsWithClearErrors) {
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:0.7+dice:0.3"); },
                                      {"ce:0.7+dice:0.3", "unknown loss \"dice\"", "ce, focal, f1"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:abc"); }, {"\"abc\"", "not a number"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:0.5x"); }, {"\"0.5x\"", "not a number"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:"); }, {"not a number"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:-1"); }, {"finite number > 0", "-1"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:0"); }, {"finite number > 0"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:inf"); }, {"finite number > 0"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce+"); }, {"\"ce+\"", "empty term"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec(""); }, {"empty term"}));
  EXPECT_TRUE(throws_error_containing([] { parse_loss_spec("ce:1+ce:2"); }, {"ce appears twice"}));
}

TEST(LossSpec, WeightedSumEqualsTheTermsAddedUp) {
  const Tensor z = randn({8, 5}, kFloat64);
  const Tensor t = from_vector({0, 1, 2, 3, 4, 0, 1, 2}, {8}, kInt64);
  LossOptions options;
  options.class_weights = rand({5}, kFloat64) + 0.5;
  options.label_smoothing = 0.1;
  options.focal_gamma = 3;
  const double want =
      0.7 * cross_entropy(z, t, ce_options(options.class_weights, 0.1, Reduction::Mean)).item() +
      0.3 * soft_f1_loss(z, t).item() +
      2.0 * focal_loss(z, t, focal_options(3, options.class_weights, Reduction::Mean)).item();
  EXPECT_NEAR(WeightedLoss("ce:0.7+f1:0.3+focal:2", options)(z, t).item(), want, 1e-12);
}

}  // namespace
}  // namespace effnet::test
