// The optimizers, LR schedules and gradient clipping of optim/:
//   (1) one readable test per optimizer and schedule, with its value worked out by hand in the comment;
//   (2) parity with the references (tools/reference/optim_fixtures.py: torch.optim, the adamp and madgrad
//       packages, torch's schedulers and clip_grad_norm_) over 20 steps, to 1e-5 relative in float32 and
//       1e-10 in float64, on the CPU and on CUDA;
//   (3) exact resumption: N steps == k steps, state saved to a file and loaded into a fresh optimizer and
//       scheduler, N - k more steps, bit for bit;
//   (4) CPU <-> CUDA agreement of the multi-tensor kernels on many tensors, long rows and several chunks;
//   (5) every bad argument is an error naming the optimizer, the parameter and what was expected.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "autograd/grad_mode.h"
#include "io/safetensors.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "optim/adam.h"
#include "optim/clip_grad.h"
#include "optim/lr_scheduler.h"
#include "optim/madgrad.h"
#include "optim/param_groups.h"
#include "optim/sgd.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace effnet::test {
namespace {

const char* const kParamNames[] = {"conv", "linear", "bias"};

std::string fixture_path(const std::string& file) {
  return std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/" + file;
}

// A leaf parameter holding `values`.
Tensor parameter(const std::vector<double>& values, const Shape& shape, TensorOptions options = kFloat64) {
  Tensor p = from_vector(values, shape, options);
  p.requires_grad_();
  return p;
}

void set_grad(const Tensor& p, const std::vector<double>& values) {
  p.set_grad(from_vector(values, p.shape(), TensorOptions(p.dtype(), p.device())));
}

// Every element within atol + rtol |expected|; reports the worst one.
void expect_close(const Tensor& actual, const Tensor& expected, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  const std::vector<double> a = actual.to_vector(), e = expected.to_vector();
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    const double excess = std::abs(a[i] - e[i]) / (atol + rtol * std::abs(e[i]));
    if (!(excess <= worst_excess)) {
      worst_excess = excess;
      worst = i;
    }
  }
  EXPECT_LE(worst_excess, 1.0) << what << ": element " << worst << " is " << a[worst] << ", expected " << e[worst];
}

void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  ASSERT_EQ(x.size(), y.size()) << what;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] != y[i]) {
      ADD_FAILURE() << what << ": element " << i << " is " << x[i] << " vs " << y[i];
      return;
    }
  }
}

// "lr=0.01 nesterov=1" -> {lr: 0.01, nesterov: 1}
std::map<std::string, double> parse_options(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    const size_t eq = item.find('=');
    out[item.substr(0, eq)] = std::stod(item.substr(eq + 1));
  }
  return out;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, const std::map<std::string, double>& options,
                                          std::vector<ParamGroup> groups) {
  const auto get = [&](const char* key, double fallback) {
    const auto found = options.find(key);
    return found == options.end() ? fallback : found->second;
  };
  if (kind == "SGD") {
    SGDOptions o;
    o.lr = get("lr", o.lr);
    o.momentum = get("momentum", o.momentum);
    o.dampening = get("dampening", o.dampening);
    o.weight_decay = get("weight_decay", o.weight_decay);
    o.nesterov = get("nesterov", 0) != 0;
    return std::make_unique<SGD>(std::move(groups), o);
  }
  if (kind == "SGDP") {
    SGDPOptions o;
    o.lr = get("lr", o.lr);
    o.momentum = get("momentum", o.momentum);
    o.dampening = get("dampening", o.dampening);
    o.weight_decay = get("weight_decay", o.weight_decay);
    o.nesterov = get("nesterov", 0) != 0;
    return std::make_unique<SGDP>(std::move(groups), o);
  }
  if (kind == "Adam" || kind == "AdamW") {
    AdamWOptions o;  // AdamW's defaults, with the weight decay set explicitly below
    o.lr = get("lr", o.lr);
    o.betas = {get("beta1", 0.9), get("beta2", 0.999)};
    o.weight_decay = get("weight_decay", kind == "AdamW" ? 1e-2 : 0.0);
    if (kind == "Adam") return std::make_unique<Adam>(std::move(groups), o);
    return std::make_unique<AdamW>(std::move(groups), o);
  }
  if (kind == "AdamP") {
    AdamPOptions o;
    o.lr = get("lr", o.lr);
    o.weight_decay = get("weight_decay", o.weight_decay);
    o.nesterov = get("nesterov", 0) != 0;
    return std::make_unique<AdamP>(std::move(groups), o);
  }
  if (kind == "MADGRAD") {
    MADGRADOptions o;
    o.lr = get("lr", o.lr);
    o.momentum = get("momentum", o.momentum);
    o.weight_decay = get("weight_decay", o.weight_decay);
    o.decouple_decay = get("decouple_decay", 0) != 0;
    return std::make_unique<MADGRAD>(std::move(groups), o);
  }
  ADD_FAILURE() << "unknown optimizer " << kind;
  return nullptr;
}

// The fixtures' groups: conv and linear with the config's weight decay, bias without.
std::vector<ParamGroup> fixture_groups(const std::map<std::string, Tensor>& params) {
  ParamGroup decay{{{"conv", params.at("conv")}, {"linear", params.at("linear")}}};
  ParamGroup no_decay{{{"bias", params.at("bias")}}};
  no_decay.weight_decay = 0.0;
  return {decay, no_decay};
}

// =====================================================================================================
// (1) Hand-computed steps
// =====================================================================================================

TEST(Optim, SgdMomentumByHand) {
  // p = 1, g = 0.5 twice, lr 0.1, momentum 0.9:
  //   step 1: buf = g = 0.5 (the first step copies),       p = 1 - 0.1 * 0.5 = 0.95
  //   step 2: buf = 0.9 * 0.5 + 0.5 = 0.95,                p = 0.95 - 0.1 * 0.95 = 0.855
  Tensor p = parameter({1.0}, {1});
  SGD sgd({{numbered({p})}}, {.lr = 0.1, .momentum = 0.9});
  set_grad(p, {0.5});
  sgd.step();
  EXPECT_NEAR(p.item(), 0.95, 1e-15);
  sgd.step();
  EXPECT_NEAR(p.item(), 0.855, 1e-15);
}

TEST(Optim, SgdNesterovWeightDecayByHand) {
  // p = 2, g = 1, lr 0.1, weight decay 0.5 (L2), momentum 0.5, nesterov:
  //   d = g + 0.5 p = 2;  buf = d = 2;  u = d + 0.5 buf = 3;  p = 2 - 0.1 * 3 = 1.7
  Tensor p = parameter({2.0}, {1});
  SGD sgd({{numbered({p})}}, {.lr = 0.1, .momentum = 0.5, .weight_decay = 0.5, .nesterov = true});
  set_grad(p, {1.0});
  sgd.step();
  EXPECT_NEAR(p.item(), 1.7, 1e-15);
}

TEST(Optim, AdamFirstStepMovesByLrByHand) {
  // Step 1, g = 0.5, lr 1e-3: m = 0.1 g = 0.05, v = 0.001 g^2 = 2.5e-4; step_size = lr / (1 - 0.9) = 1e-2,
  // denominator sqrt(v) / sqrt(1 - 0.999) + eps = 0.5 + 1e-8, so p moves by 1e-2 * 0.05 / 0.5 = lr:
  //   p = 1 - 1e-3 = 0.999 (and -2 - 1e-3 for g = -3: only the sign of g matters on the first step).
  Tensor p = parameter({1.0, -2.0}, {2});
  Adam adam({{numbered({p})}});
  set_grad(p, {0.5, -3.0});
  adam.step();
  EXPECT_NEAR(p.to_vector()[0], 0.999, 1e-10);
  EXPECT_NEAR(p.to_vector()[1], -1.999, 1e-10);
}

TEST(Optim, AdamWDecaysBeforeTheStepByHand) {
  // p = 1, g = 2, lr 0.1, weight decay 0.1: p = 1 * (1 - 0.1 * 0.1) = 0.99, then the first Adam step moves
  // it by lr against the sign of g: 0.99 - 0.1 = 0.89. (Adam's L2 decay would only change g to 2.1.)
  Tensor p = parameter({1.0}, {1});
  AdamWOptions options;
  options.lr = 0.1;
  options.weight_decay = 0.1;
  AdamW adamw({{numbered({p})}}, options);
  set_grad(p, {2.0});
  adamw.step();
  EXPECT_NEAR(p.item(), 0.89, 1e-9);
}

TEST(Optim, AdamPRemovesTheRadialComponentByHand) {
  // Rows p = [1, 2], g = [2, -1]: g . p = 0, so cos = 0 < 0.1 / sqrt(2) and the per-row projection applies.
  // Step 1 direction (lr 0.1): u = sign(g) = [1, -1] in units of lr (see the Adam test), p . u = -1,
  // |p|^2 = 5, so u - p (p . u) / |p|^2 = [1, -1] + [0.2, 0.4] = [1.2, -0.6] (orthogonal to p).
  // Weight decay 0.1 is scaled by wd_ratio 0.1: p *= 1 - 0.1 * 0.1 * 0.1 = 0.999.
  //   p = 0.999 [1, 2] - 0.1 [1.2, -0.6] = [0.879, 2.058]   (both rows alike)
  Tensor p = parameter({1, 2, 1, 2}, {2, 2});
  AdamP adamp({{numbered({p})}}, {.lr = 0.1, .weight_decay = 0.1});
  set_grad(p, {2, -1, 2, -1});
  adamp.step();
  const std::vector<double> v = p.to_vector();
  EXPECT_NEAR(v[0], 0.879, 1e-8);
  EXPECT_NEAR(v[1], 2.058, 1e-8);
  EXPECT_NEAR(v[2], 0.879, 1e-8);
  EXPECT_NEAR(v[3], 2.058, 1e-8);

  // Not orthogonal (g = [1, 1]: cos = 3 / sqrt(10) per row): plain decoupled decay 1 - 0.1 * 0.1 = 0.99
  // and the Adam step: p = 0.99 [1, 2] - 0.1 [1, 1] = [0.89, 1.88].
  Tensor q = parameter({1, 2, 1, 2}, {2, 2});
  AdamP plain({{numbered({q})}}, {.lr = 0.1, .weight_decay = 0.1});
  set_grad(q, {1, 1, 1, 1});
  plain.step();
  EXPECT_NEAR(q.to_vector()[0], 0.89, 1e-8);
  EXPECT_NEAR(q.to_vector()[1], 1.88, 1e-8);
}

TEST(Optim, AdamPLeavesOneDimensionalParametersAloneByHand) {
  // A 1-D parameter is never projected, even with g orthogonal to p: p = [1, 2], g = [2, -1], lr 0.1,
  // weight decay 0.1 (full, not scaled): p = 0.99 [1, 2] - 0.1 [1, -1] = [0.89, 2.08].
  Tensor p = parameter({1, 2}, {2});
  AdamP adamp({{numbered({p})}}, {.lr = 0.1, .weight_decay = 0.1});
  set_grad(p, {2, -1});
  adamp.step();
  EXPECT_NEAR(p.to_vector()[0], 0.89, 1e-8);
  EXPECT_NEAR(p.to_vector()[1], 2.08, 1e-8);
}

TEST(Optim, SgdpScalesWeightDecayWhenOrthogonalByHand) {
  // p = [1, 2] (one row of a [1, 2] weight), g = [2, -1] orthogonal; lr 0.1, no momentum, weight decay 1:
  // u = buf = g (already orthogonal: nothing to remove); decay 1 - 0.1 * 1 * 0.1 / (1 - 0) = 0.99:
  //   p = 0.99 [1, 2] - 0.1 [2, -1] = [0.79, 2.08]
  Tensor p = parameter({1, 2}, {1, 2});
  SGDP sgdp({{numbered({p})}}, {.lr = 0.1, .weight_decay = 1.0});
  set_grad(p, {2, -1});
  sgdp.step();
  EXPECT_NEAR(p.to_vector()[0], 0.79, 1e-12);
  EXPECT_NEAR(p.to_vector()[1], 2.08, 1e-12);
}

TEST(Optim, MadgradByHand) {
  // p = 1, g = 0.5, lr 0.01, eps 1e-6, momentum 0.9, first step (k = 0):
  //   lr' = lr + eps = 0.010001, lamb = lr' sqrt(1) = 0.010001, x0 = p = 1
  //   S = lamb g^2 = 0.00250025, s = lamb g = 0.0050005, rms = S^(1/3) + eps = 0.1357264047...
  //   z = x0 - s / rms = 1 - 0.0368424995 = 0.9631575005;  p = 0.9 p + 0.1 z = 0.99631575005
  Tensor p = parameter({1.0}, {1});
  MADGRAD madgrad({{numbered({p})}});
  set_grad(p, {0.5});
  madgrad.step();
  EXPECT_NEAR(p.item(), 0.9963157500482338, 1e-14);
}

TEST(Optim, ParameterWithoutGradIsSkipped) {
  // As in PyTorch: no gradient, no update, no state (and its step count stays 0).
  Tensor a = parameter({1.0}, {1});
  Tensor b = parameter({1.0}, {1});
  Adam adam({{numbered({a, b})}}, {.lr = 0.1});
  set_grad(a, {1.0});
  adam.step();
  EXPECT_NEAR(a.item(), 0.9, 1e-8);
  EXPECT_EQ(b.item(), 1.0);
  const OptimizerState state = adam.state_dict();
  EXPECT_EQ(state.metadata.count("0.step"), 1u);
  EXPECT_EQ(state.metadata.count("1.step"), 0u);
  EXPECT_EQ(state.tensors.size(), 2u);  // a's exp_avg and exp_avg_sq
}

TEST(Optim, GroupsOverrideLrAndWeightDecay) {
  // Group 0: lr 0.1 (the default); group 1: lr 0.01. SGD steps by lr g with g = 1.
  Tensor a = parameter({1.0}, {1});
  Tensor b = parameter({1.0}, {1});
  ParamGroup slow{{{"b", b}}};
  slow.lr = 0.01;
  SGD sgd({ParamGroup{{{"a", a}}}, slow}, {.lr = 0.1});
  set_grad(a, {1.0});
  set_grad(b, {1.0});
  sgd.step();
  EXPECT_NEAR(a.item(), 0.9, 1e-15);
  EXPECT_NEAR(b.item(), 0.99, 1e-15);
  EXPECT_EQ(sgd.lr(1), 0.01);
}

TEST(Optim, WeightDecayGroupsSplitLikeTimm) {
  // Conv and linear weights decay; the conv bias, batch norm weight and bias and the linear bias do not.
  Sequential model;
  Conv2dOptions conv(3, 4, 3);
  conv.bias = true;
  model.add(std::make_shared<Conv2d>(conv));
  model.add(std::make_shared<BatchNorm2d>(BatchNorm2dOptions{4, 1e-5, 0.1}));
  model.add(std::make_shared<Linear>(4, 2));
  const std::vector<ParamGroup> groups = weight_decay_groups(model, 0.05);
  ASSERT_EQ(groups.size(), 2u);
  std::vector<std::string> no_decay, decay;
  for (const auto& [name, p] : groups[0].params) no_decay.push_back(name);
  for (const auto& [name, p] : groups[1].params) decay.push_back(name);
  EXPECT_EQ(no_decay, (std::vector<std::string>{"0.bias", "1.weight", "1.bias", "2.bias"}));
  EXPECT_EQ(decay, (std::vector<std::string>{"0.weight", "2.weight"}));
  EXPECT_EQ(groups[0].weight_decay, 0.0);
  EXPECT_EQ(groups[1].weight_decay, 0.05);
  AdamP adamp(groups, {.weight_decay = 0.05});
  EXPECT_EQ(adamp.hyperparameters(0).weight_decay, 0.0);
  EXPECT_EQ(adamp.hyperparameters(1).weight_decay, 0.05);
}

// ---- schedules by hand (base lr 0.1)

double lr_after(LRScheduleOptions options, int64_t steps) {
  Tensor p = parameter({0.0}, {1});
  SGD sgd({{numbered({p})}}, {.lr = 0.1});
  options.unit = ScheduleUnit::Iteration;
  LRScheduler scheduler(sgd, options);
  for (int64_t i = 0; i < steps; ++i) scheduler.step_iteration();
  return sgd.lr(0);
}

TEST(Schedule, ConstantByHand) {
  EXPECT_EQ(lr_after({.kind = ScheduleKind::Constant}, 1000), 0.1);  // the recipe's: never changes
}

TEST(Schedule, StepByHand) {
  // step_size 3, gamma 0.5: t = 0..2 -> 0.1, t = 3..5 -> 0.05, t = 7 -> 0.1 * 0.5^2 = 0.025
  const LRScheduleOptions o{.kind = ScheduleKind::Step, .step_size = 3, .gamma = 0.5};
  EXPECT_DOUBLE_EQ(lr_after(o, 2), 0.1);
  EXPECT_DOUBLE_EQ(lr_after(o, 3), 0.05);
  EXPECT_DOUBLE_EQ(lr_after(o, 7), 0.025);
}

TEST(Schedule, MultiStepByHand) {
  // milestones {2, 5}, gamma 0.1: t = 1 -> 0.1, t = 2 -> 0.01, t = 5 -> 0.001
  const LRScheduleOptions o{.kind = ScheduleKind::MultiStep, .milestones = {2, 5}, .gamma = 0.1};
  EXPECT_DOUBLE_EQ(lr_after(o, 1), 0.1);
  EXPECT_DOUBLE_EQ(lr_after(o, 2), 0.01);
  EXPECT_NEAR(lr_after(o, 5), 0.001, 1e-18);
}

TEST(Schedule, CosineByHand) {
  // t_max 10, eta_min 0: t = 5 is half way, (1 + cos(pi / 2)) / 2 = 0.5 -> 0.05; t = 10 -> eta_min = 0;
  // with eta_min 0.02: t = 5 -> 0.02 + 0.08 / 2 = 0.06.
  EXPECT_NEAR(lr_after({.kind = ScheduleKind::Cosine, .t_max = 10}, 5), 0.05, 1e-15);
  EXPECT_NEAR(lr_after({.kind = ScheduleKind::Cosine, .t_max = 10}, 10), 0.0, 1e-15);
  EXPECT_NEAR(lr_after({.kind = ScheduleKind::Cosine, .t_max = 10, .eta_min = 0.02}, 5), 0.06, 1e-15);
}

TEST(Schedule, CosineWarmRestartsByHand) {
  // t_0 2, t_mult 2: periods [0, 2), [2, 6), [6, 14). t = 2 and t = 6 restart at 0.1; t = 4 is half way
  // through the second period: 0.05; t = 10 half way through the third: 0.05.
  const LRScheduleOptions o{.kind = ScheduleKind::CosineWarmRestarts, .t_0 = 2, .t_mult = 2};
  EXPECT_DOUBLE_EQ(lr_after(o, 2), 0.1);
  EXPECT_NEAR(lr_after(o, 4), 0.05, 1e-15);
  EXPECT_DOUBLE_EQ(lr_after(o, 6), 0.1);
  EXPECT_NEAR(lr_after(o, 10), 0.05, 1e-15);
}

TEST(Schedule, LinearWarmupByHand) {
  // 4 warmup steps from factor 0.2: t = 0 -> 0.02, t = 2 -> 0.1 (0.2 + 0.8 * 2 / 4) = 0.06, then the
  // cosine (t_max 4) starts from its own t = 0 at t = 4: 0.1, and t = 6 is its half way: 0.05.
  const LRScheduleOptions o{.kind = ScheduleKind::Cosine, .t_max = 4, .warmup_steps = 4, .warmup_start_factor = 0.2};
  EXPECT_NEAR(lr_after(o, 0), 0.02, 1e-15);
  EXPECT_NEAR(lr_after(o, 2), 0.06, 1e-15);
  EXPECT_NEAR(lr_after(o, 4), 0.1, 1e-15);
  EXPECT_NEAR(lr_after(o, 6), 0.05, 1e-15);
}

TEST(Schedule, StepsOnlyOnItsUnit) {
  // A per-epoch schedule ignores iterations: 5 iterations and 1 epoch of Step(1, 0.5) -> 0.05.
  Tensor p = parameter({0.0}, {1});
  SGD sgd({{numbered({p})}}, {.lr = 0.1});
  LRScheduler scheduler(sgd, {.kind = ScheduleKind::Step, .unit = ScheduleUnit::Epoch, .step_size = 1, .gamma = 0.5});
  for (int i = 0; i < 5; ++i) scheduler.step_iteration();
  EXPECT_EQ(sgd.lr(0), 0.1);
  scheduler.step_epoch();
  EXPECT_EQ(sgd.lr(0), 0.05);
  EXPECT_EQ(scheduler.t(), 1);
}

// ---- clipping by hand

TEST(ClipGrad, ThreeFourFiveByHand) {
  // Gradients [3] and [4]: norm 5; max_norm 1 scales both by 1 / (5 + 1e-6): [0.6, 0.8] to 1e-7.
  // With max_norm 10 the factor is min(10 / 5, 1) = 1: unchanged.
  Tensor a = parameter({0.0}, {1});
  Tensor b = parameter({0.0}, {1});
  set_grad(a, {3.0});
  set_grad(b, {4.0});
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b}, 10.0).item(), 5.0);
  EXPECT_EQ(a.grad().item(), 3.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b}, 1.0).item(), 5.0);
  EXPECT_NEAR(a.grad().item(), 0.6, 1e-6);
  EXPECT_NEAR(b.grad().item(), 0.8, 1e-6);
}

TEST(ClipGrad, NonFiniteNormsAsPyTorch) {
  // An infinite gradient: norm inf, factor 1 / inf = 0, so finite elements become 0 and inf * 0 = NaN.
  // A NaN gradient: norm NaN, factor NaN, every element NaN. No error either way (error_if_nonfinite=False).
  const double inf = std::numeric_limits<double>::infinity();
  Tensor a = parameter({0.0, 0.0}, {2});
  set_grad(a, {inf, 2.0});
  EXPECT_TRUE(std::isinf(clip_grad_norm({a}, 1.0).item()));
  EXPECT_TRUE(std::isnan(a.grad().to_vector()[0]));
  EXPECT_EQ(a.grad().to_vector()[1], 0.0);
  set_grad(a, {std::nan(""), 2.0});
  EXPECT_TRUE(std::isnan(clip_grad_norm({a}, 1.0).item()));
  EXPECT_TRUE(std::isnan(a.grad().to_vector()[1]));
}

// =====================================================================================================
// (2) Parity with torch.optim, adamp, madgrad and torch's schedulers
// =====================================================================================================

struct ParityCase {
  std::string config;
  DType dtype;
};

std::vector<ParityCase> parity_cases() {
  const safetensors::File fixtures = safetensors::load(fixture_path("optim_steps.safetensors"));
  std::vector<ParityCase> cases;
  std::istringstream configs(fixtures.metadata.at("configs"));
  std::string config;
  while (configs >> config) {
    cases.push_back({config, kFloat32});
    cases.push_back({config, kFloat64});
  }
  return cases;
}

std::string parity_name(const testing::TestParamInfo<ParityCase>& info) {
  return info.param.config + "_" + dtype_name(info.param.dtype);
}

void run_parity(const ParityCase& c, Device device) {
  static const safetensors::File fixtures = safetensors::load(fixture_path("optim_steps.safetensors"));
  const std::string kind = fixtures.metadata.at(c.config + ".optimizer");
  const std::string grads_key = fixtures.metadata.at(c.config + ".grads");
  const std::string dtype = dtype_name(c.dtype);
  // float32: 1e-5 relative; float64: 1e-10 relative; with the same floor for elements near zero.
  const double tolerance = c.dtype == kFloat32 ? 1e-5 : 1e-10;

  std::map<std::string, Tensor> params;
  for (const char* name : kParamNames) {
    params[name] = fixtures.find(std::string("init.") + name).to(c.dtype).to(device).clone();
    params[name].requires_grad_();
  }
  std::unique_ptr<Optimizer> optimizer =
      make_optimizer(kind, parse_options(fixtures.metadata.at(c.config + ".options")), fixture_groups(params));
  ASSERT_NE(optimizer, nullptr);
  for (int64_t step = 0; step < 20; ++step) {
    for (const char* name : kParamNames) {
      const Tensor grads = fixtures.find(grads_key + ".grads." + name);
      params[name].set_grad(grads.select(0, step).to(c.dtype).contiguous().to(device));
    }
    optimizer->step();
    for (const char* name : kParamNames) {
      const Tensor expected = fixtures.find(c.config + "." + dtype + ".step" + std::to_string(step + 1) + "." + name);
      if (!expected.defined()) continue;  // only steps 1, 5 and 20 are stored
      const std::string what =
          c.config + " " + dtype + " on " + device.str() + ", step " + std::to_string(step + 1) + ", " + name;
      expect_close(params[name], expected, tolerance, tolerance, what);
    }
  }
}

class OptimParity : public testing::TestWithParam<ParityCase> {};
class OptimParityCuda : public testing::TestWithParam<ParityCase> {};

TEST_P(OptimParity, MatchesReferenceOnCpu) { run_parity(GetParam(), Device::cpu()); }
TEST_P(OptimParityCuda, MatchesReferenceOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  run_parity(GetParam(), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, OptimParity, testing::ValuesIn(parity_cases()), parity_name);
INSTANTIATE_TEST_SUITE_P(Fixtures, OptimParityCuda, testing::ValuesIn(parity_cases()), parity_name);

void run_clip_parity(Device device) {
  const safetensors::File fixtures = safetensors::load(fixture_path("optim_steps.safetensors"));
  for (DType dtype : {kFloat32, kFloat64}) {
    const std::string prefix = std::string("clip.") + dtype_name(dtype) + ".";
    const double tolerance = dtype == kFloat32 ? 1e-5 : 1e-10;
    std::vector<Tensor> params;
    for (const char* name : kParamNames) {
      const Tensor first = fixtures.find(std::string("shared.grads.") + name).select(0, 0);
      Tensor p = zeros(first.shape(), TensorOptions(dtype, device));
      p.requires_grad_();
      p.set_grad((first.to(dtype) * 3.0).contiguous().to(device));
      params.push_back(p);
    }
    const Tensor norm = clip_grad_norm(params, 1.0);
    expect_close(norm.reshape({1}), fixtures.find(prefix + "norm"), tolerance, tolerance, prefix + "norm");
    for (size_t i = 0; i < params.size(); ++i) {
      expect_close(params[i].grad(), fixtures.find(prefix + kParamNames[i]), tolerance, tolerance,
                   prefix + kParamNames[i] + " on " + device.str());
    }
  }
}

TEST(ClipGrad, MatchesTorchOnCpu) { run_clip_parity(Device::cpu()); }
TEST(ClipGradCuda, MatchesTorchOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  run_clip_parity(Device::cuda(0));
}

LRScheduleOptions schedule_options(const std::string& text) {
  LRScheduleOptions o;
  o.unit = ScheduleUnit::Iteration;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "kind") {
      for (ScheduleKind kind : {ScheduleKind::Constant, ScheduleKind::Step, ScheduleKind::MultiStep,
                                ScheduleKind::Cosine, ScheduleKind::CosineWarmRestarts}) {
        if (value == schedule_name(kind)) o.kind = kind;
      }
    } else if (key == "milestones") {
      std::istringstream list(value);
      std::string m;
      while (std::getline(list, m, ',')) o.milestones.push_back(std::stoll(m));
    } else if (key == "step_size") o.step_size = std::stoll(value);
    else if (key == "gamma") o.gamma = std::stod(value);
    else if (key == "t_max") o.t_max = std::stoll(value);
    else if (key == "t_0") o.t_0 = std::stoll(value);
    else if (key == "t_mult") o.t_mult = std::stoll(value);
    else if (key == "eta_min") o.eta_min = std::stod(value);
    else if (key == "warmup_steps") o.warmup_steps = std::stoll(value);
    else if (key == "warmup_start_factor") o.warmup_start_factor = std::stod(value);
    else ADD_FAILURE() << "unknown schedule option " << key;
  }
  return o;
}

TEST(Schedule, MatchesTorchSchedulers) {
  // Both groups (base lrs 0.1 and 0.01) for 40 steps, within 1e-10 of the base lr (torch's recursive
  // forms round differently from the closed forms, by about 1e-16 relative per step).
  const safetensors::File fixtures = safetensors::load(fixture_path("optim_schedules.safetensors"));
  std::istringstream names(fixtures.metadata.at("schedules"));
  std::string name;
  int checked = 0;
  while (names >> name) {
    Tensor a = parameter({0.0}, {1});
    Tensor b = parameter({0.0}, {1});
    ParamGroup second{{{"b", b}}};
    second.lr = 0.01;
    SGD sgd({ParamGroup{{{"a", a}}}, second}, {.lr = 0.1});
    LRScheduler scheduler(sgd, schedule_options(fixtures.metadata.at(name + ".options")));
    const std::vector<double> expected = fixtures.find(name + ".lr").to_vector();
    for (size_t t = 0; t < 40; ++t) {
      EXPECT_NEAR(sgd.lr(0), expected[2 * t], 1e-10 * 0.1) << name << " at t = " << t;
      EXPECT_NEAR(sgd.lr(1), expected[2 * t + 1], 1e-10 * 0.01) << name << " at t = " << t;
      scheduler.step_iteration();
    }
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}

// =====================================================================================================
// (3) Exact resumption
// =====================================================================================================

// Deterministic gradients for step `step` (the same on every device: generated on the CPU).
Tensor resume_grad(const Tensor& p, int64_t step, size_t index) {
  manual_seed(static_cast<uint64_t>(1000 * step + index));
  return randn(p.shape(), p.dtype()).to(p.device());
}

struct Run {
  std::map<std::string, Tensor> params;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<LRScheduler> scheduler;
};

Run start_run(const std::string& kind, const std::map<std::string, double>& options, Device device) {
  manual_seed(7);
  Run run;
  run.params["conv"] = randn({8, 4, 3, 3}).to(device);
  run.params["linear"] = randn({18, 32}).to(device);
  run.params["bias"] = randn({32}).to(device);
  for (auto& [name, p] : run.params) p.requires_grad_();
  run.optimizer = make_optimizer(kind, options, fixture_groups(run.params));
  run.scheduler = std::make_unique<LRScheduler>(
      *run.optimizer, LRScheduleOptions{.kind = ScheduleKind::Cosine, .unit = ScheduleUnit::Iteration, .t_max = 9,
                                        .warmup_steps = 3});
  return run;
}

void advance(Run& run, int64_t from, int64_t to) {
  for (int64_t step = from; step < to; ++step) {
    size_t index = 0;
    for (const char* name : kParamNames) {
      Tensor& p = run.params[name];
      // The bias skips every third step: a parameter without a gradient must resume right too.
      if (std::string(name) == "bias" && step % 3 == 1) p.set_grad(Tensor());
      else p.set_grad(resume_grad(p, step, index));
      ++index;
    }
    run.optimizer->step();
    run.scheduler->step_iteration();
  }
}

void run_resume(const std::string& kind, const std::map<std::string, double>& options, Device device) {
  constexpr int64_t kTotal = 12, kSaved = 5;
  Run straight = start_run(kind, options, device);
  advance(straight, 0, kTotal);

  Run first = start_run(kind, options, device);
  advance(first, 0, kSaved);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("effnet_optim_resume_" + std::to_string(::getpid()) + ".safetensors")).string();
  OptimizerState state = first.optimizer->state_dict();
  for (const auto& [key, value] : first.scheduler->state_dict()) state.metadata["scheduler." + key] = value;
  safetensors::NamedTensors checkpoint = state.tensors;
  for (const auto& [name, p] : first.params) checkpoint.emplace_back("model." + name, p);
  safetensors::save(path, checkpoint, state.metadata);

  // A fresh run (other parameter values), restored from the file alone.
  Run resumed = start_run(kind, options, device);
  const safetensors::File file = safetensors::load(path);
  std::filesystem::remove(path);
  OptimizerState loaded;
  std::map<std::string, std::string> scheduler_state;
  for (const auto& [key, value] : file.metadata) {
    if (key.rfind("scheduler.", 0) == 0) scheduler_state[key.substr(10)] = value;
    else loaded.metadata[key] = value;
  }
  for (const auto& [key, tensor] : file.tensors) {
    if (key.rfind("model.", 0) == 0) {
      autograd::NoGradGuard no_grad;
      resumed.params[key.substr(6)].copy_(tensor);
    } else {
      loaded.tensors.emplace_back(key, tensor);
    }
  }
  resumed.optimizer->load_state_dict(loaded);
  resumed.scheduler->load_state_dict(scheduler_state);
  advance(resumed, kSaved, kTotal);

  EXPECT_EQ(resumed.optimizer->steps(), straight.optimizer->steps());
  EXPECT_EQ(resumed.optimizer->lr(0), straight.optimizer->lr(0));
  for (const char* name : kParamNames) {
    expect_bitwise_equal(resumed.params[name], straight.params[name],
                         kind + " resumed on " + device.str() + ": " + name);
  }
}

struct ResumeCase {
  std::string name, kind, options;
};

std::vector<ResumeCase> resume_cases() {
  return {
      {"sgd_nesterov", "SGD", "lr=0.05 momentum=0.9 nesterov=1 weight_decay=0.01"},
      {"sgdp", "SGDP", "lr=0.05 momentum=0.9 weight_decay=0.01"},
      {"adam", "Adam", "lr=0.01 weight_decay=0.01"},
      {"adamw", "AdamW", "lr=0.01 weight_decay=0.05"},
      {"adamp", "AdamP", "lr=0.01 weight_decay=0.1 nesterov=1"},
      {"madgrad", "MADGRAD", "lr=0.01 weight_decay=0.001"},
  };
}

std::string resume_name(const testing::TestParamInfo<ResumeCase>& info) { return info.param.name; }

class OptimResume : public testing::TestWithParam<ResumeCase> {};
class OptimResumeCuda : public testing::TestWithParam<ResumeCase> {};

TEST_P(OptimResume, SavedAndLoadedRunMatchesBitForBitOnCpu) {
  run_resume(GetParam().kind, parse_options(GetParam().options), Device::cpu());
}
TEST_P(OptimResumeCuda, SavedAndLoadedRunMatchesBitForBitOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  run_resume(GetParam().kind, parse_options(GetParam().options), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(AllOptimizers, OptimResume, testing::ValuesIn(resume_cases()), resume_name);
INSTANTIATE_TEST_SUITE_P(AllOptimizers, OptimResumeCuda, testing::ValuesIn(resume_cases()), resume_name);

// =====================================================================================================
// (4) CPU <-> CUDA on the multi-tensor kernels' edge cases
// =====================================================================================================

// A gradient orthogonal to p per output channel (rows) or over the whole tensor.
Tensor orthogonal_gradient(const Tensor& p, bool per_channel) {
  const Tensor rows = p.reshape({per_channel ? p.size(0) : 1, -1});
  const Tensor r = randn(rows.shape(), p.dtype());
  const Tensor coefficient = sum(r * rows, {1}, true) / sum(rows * rows, {1}, true);
  return (r - coefficient * rows).reshape(p.shape()).contiguous();
}

void run_cpu_cuda_agreement(const std::string& kind, DType dtype) {
  // Shapes that cross the CUDA kernels' boundaries: rows longer than a segment (2048), tensors of several
  // chunks (4096), depthwise rows of 25, a single-row weight, and many small tensors in one table.
  manual_seed(11);
  std::vector<Shape> shapes = {{3, 5000}, {70000}, {16, 1, 5, 5}, {1, 300}, {64, 68}, {272, 1632, 1, 1}};
  for (int i = 0; i < 40; ++i) shapes.push_back({static_cast<int64_t>(i % 7 + 1), 9});
  std::vector<Tensor> initial, cpu_params, cuda_params;
  for (const Shape& s : shapes) {
    initial.push_back(randn(s, dtype));
    cpu_params.push_back(initial.back().clone().requires_grad_());
    cuda_params.push_back(initial.back().cuda().requires_grad_());
  }
  const std::map<std::string, double> options = parse_options("lr=0.01 momentum=0.9 weight_decay=0.01 nesterov=1");
  std::unique_ptr<Optimizer> on_cpu = make_optimizer(kind, options, {{numbered(cpu_params)}});
  std::unique_ptr<Optimizer> on_cuda = make_optimizer(kind, options, {{numbered(cuda_params)}});
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      // Per tensor and step: orthogonal per channel, over the whole tensor, or random (every test branch).
      const int branch = static_cast<int>((i + static_cast<size_t>(step)) % 3);
      const Tensor& p = cpu_params[i];
      const Tensor g =
          p.dim() > 1 && branch < 2 ? orthogonal_gradient(p.detach(), branch == 0) : randn(p.shape(), dtype);
      cpu_params[i].set_grad(g);
      cuda_params[i].set_grad(g.cuda());
    }
    on_cpu->step();
    on_cuda->step();
  }
  const double tolerance = dtype == kFloat32 ? 1e-5 : 1e-12;
  for (size_t i = 0; i < shapes.size(); ++i) {
    expect_close(cuda_params[i].cpu(), cpu_params[i], tolerance, tolerance,
                 kind + " " + dtype_name(dtype) + " tensor " + std::to_string(i) + " " + shape_str(shapes[i]));
  }
  const Tensor norm_cpu = clip_grad_norm(cpu_params, 1.0);
  const Tensor norm_cuda = clip_grad_norm(cuda_params, 1.0);
  expect_close(norm_cuda.cpu(), norm_cpu, tolerance, 0, "global norm");
}

TEST(OptimCuda, MultiTensorKernelsAgreeWithCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (const char* kind : {"SGD", "SGDP", "Adam", "AdamW", "AdamP", "MADGRAD"}) {
    for (DType dtype : {kFloat32, kFloat64}) run_cpu_cuda_agreement(kind, dtype);
  }
}

// =====================================================================================================
// (5) Errors
// =====================================================================================================

template <class F>
void expect_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one mentioning " << fragments.front();
  } catch (const Error& e) {
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what() << "\n lacks: " << fragment;
    }
  }
}

TEST(OptimErrors, BadHyperparametersNameOptimizerAndValue) {
  Tensor p = parameter({1.0}, {1});
  expect_error([&] { AdamP({{numbered({p})}}, {.lr = -0.1}); }, {"AdamP", "group 0", "lr", ">= 0", "-0.1"});
  expect_error([&] { Adam({{numbered({p})}}, {.betas = {0.9, 1.0}}); }, {"Adam", "beta2", "[0, 1)", "1"});
  expect_error([&] { AdamP({{numbered({p})}}, {.betas = {-0.1, 0.999}}); }, {"AdamP", "beta1", "[0, 1)"});
  expect_error([&] { SGD({{numbered({p})}}, {.lr = 0.1, .nesterov = true}); }, {"SGD", "nesterov", "momentum > 0"});
  expect_error([&] { MADGRAD({{numbered({p})}}, {.momentum = 1.0}); }, {"MADGRAD", "momentum", "[0, 1)"});
  expect_error([&] { SGDP({{numbered({p})}}, {.weight_decay = -1}); }, {"SGDP", "weight_decay", ">= 0"});
  ParamGroup negative{numbered({p})};
  negative.lr = -1.0;
  expect_error([&] { SGD({negative}); }, {"SGD", "group 0", "lr"});
  SGD sgd({{numbered({p})}});
  expect_error([&] { sgd.set_lr(0, std::nan("")); }, {"SGD", "lr", "finite"});
}

TEST(OptimErrors, BadParametersNameTheParameter) {
  Tensor p = parameter({1.0, 2.0}, {2});
  expect_error([&] { Adam({ParamGroup{{{"w", p}, {"v", p}}}}); }, {"Adam", "'v'", "twice"});
  expect_error([&] { Adam({ParamGroup{}}); }, {"Adam", "no parameters"});
  Tensor leaf = parameter({1.0, 2.0}, {2});
  Tensor not_leaf = leaf * 2.0;
  expect_error([&] { Adam({ParamGroup{{{"scaled", not_leaf}}}}); }, {"Adam", "'scaled'", "leaf"});
  Tensor strided = zeros({2, 2}, kFloat64).transpose(0, 1);
  expect_error([&] { Adam({ParamGroup{{{"t", strided}}}}); }, {"Adam", "'t'", "contiguous"});
  Tensor counter = zeros({2}, kInt64);
  expect_error([&] { Adam({ParamGroup{{{"n", counter}}}}); }, {"Adam", "'n'", "float32 or float64", "int64"});
}

TEST(OptimErrors, LoadStateDictChecksKindNamesAndShapes) {
  Tensor p = parameter({1.0, 2.0}, {2});
  AdamP source({ParamGroup{{{"w", p}}}});
  set_grad(p, {1.0, 1.0});
  source.step();
  const OptimizerState state = source.state_dict();

  Tensor q = parameter({1.0, 2.0, 3.0}, {3});
  AdamP wrong_shape({ParamGroup{{{"w", q}}}});
  expect_error([&] { wrong_shape.load_state_dict(state); }, {"AdamP", "load_state_dict", "w.exp_avg", "[2]", "[3]"});

  AdamP wrong_name({ParamGroup{{{"v", p}}}});
  expect_error([&] { wrong_name.load_state_dict(state); }, {"AdamP", "load_state_dict", "[w]", "[v]"});

  Adam wrong_kind({ParamGroup{{{"w", p}}}});
  expect_error([&] { wrong_kind.load_state_dict(state); }, {"Adam", "AdamP optimizer"});

  OptimizerState missing = state;
  missing.tensors.pop_back();
  AdamP target({ParamGroup{{{"w", p}}}});
  expect_error([&] { target.load_state_dict(missing); }, {"AdamP", "'w'", "exp_avg_sq"});
  EXPECT_EQ(target.steps(), 0);  // a failed load leaves the optimizer as it was
}

TEST(OptimErrors, ScheduleAndClipArguments) {
  Tensor p = parameter({1.0}, {1});
  SGD sgd({{numbered({p})}});
  expect_error([&] { LRScheduler(sgd, {.kind = ScheduleKind::Cosine, .t_max = 0}); }, {"cosine", "t_max", ">= 1"});
  expect_error([&] { LRScheduler(sgd, {.kind = ScheduleKind::MultiStep, .milestones = {5, 3}}); },
               {"multistep", "milestones", "increasing"});
  expect_error([&] { clip_grad_norm({p}, -1.0); }, {"clip_grad_norm", "max_norm", "> 0"});
}

}  // namespace
}  // namespace effnet::test
