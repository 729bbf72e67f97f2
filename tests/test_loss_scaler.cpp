// Dynamic loss scaling (optim/loss_scaler.h): a run of torch.amp.GradScaler replayed step for step
// (tests/fixtures/loss_scaler.safetensors, tools/reference/loss_scaler_fixtures.py), the rules by hand,
// and the argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "io/safetensors.h"
#include "optim/loss_scaler.h"
#include "optim/sgd.h"
#include "tensor/ops.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

TEST(LossScaler, ReplaysPyTorchsGradScaler) {
  const safetensors::File f =
      safetensors::load(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/loss_scaler.safetensors");
  const Tensor inputs = f.find("inputs");
  const std::vector<double> scales = f.find("scale").to_vector(), params = f.find("params").to_vector(),
                            skipped = f.find("skipped").to_vector();
  Tensor w = f.find("w0").clone().requires_grad_();
  SGD optimizer({ParamGroup{numbered({w})}}, SGDOptions{.lr = 0.1});
  DynamicLossScaler scaler({.init_scale = 1024, .growth_factor = 2, .backoff_factor = 0.5, .growth_interval = 3});
  for (int64_t t = 0; t < inputs.size(0); ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    optimizer.zero_grad();
    EXPECT_EQ(scaler.current_scale(), scales[t]);
    scaler.scale(sum(mul(w, inputs.select(0, t)))).backward();
    EXPECT_EQ(scaler.step(optimizer), skipped[t] == 0);
    scaler.update();
    // The parameters agree to float32 rounding: SGD's own update rounds like torch.optim.SGD only to within
    // an ulp (optim/update_math.h); the scaler's part, the scale and the skip, is exact.
    const std::vector<double> ours = w.to_vector();
    for (int64_t k = 0; k < 4; ++k) {
      EXPECT_NEAR(ours[k], params[t * 4 + k], 1e-6 * std::abs(params[t * 4 + k])) << "w[" << k << "]";
    }
  }
}

TEST(LossScaler, UnscalesExactlyAndBacksOffOnOverflow) {
  Tensor w = from_vector({1.0, 2.0}, {2}, kFloat32).requires_grad_();
  SGD optimizer({ParamGroup{numbered({w})}}, SGDOptions{.lr = 1});
  DynamicLossScaler scaler({.init_scale = 8, .growth_factor = 2, .backoff_factor = 0.5, .growth_interval = 2});
  const Tensor loss = sum(mul(w, from_vector({0.5, -3.0}, {2}, kFloat32)));
  EXPECT_EQ(scaler.scale(loss).item(), 8 * loss.item());
  scaler.scale(loss).backward();
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{4, -24}));  // scaled
  scaler.unscale(optimizer);  // e.g. to clip the true gradients before the step
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{0.5, -3}));
  EXPECT_TRUE(scaler.step(optimizer));  // no second unscale
  EXPECT_EQ(w.to_vector(), (std::vector<double>{0.5, 5}));
  scaler.update();
  EXPECT_EQ(scaler.growth_tracker(), 1);
  // An infinite gradient: no step, the scale halves, the count restarts.
  optimizer.zero_grad();
  scaler.scale(sum(mul(w, from_vector({INFINITY, 1.0}, {2}, kFloat32)))).backward();
  EXPECT_FALSE(scaler.step(optimizer));
  EXPECT_EQ(w.to_vector(), (std::vector<double>{0.5, 5}));
  scaler.update();
  EXPECT_EQ(scaler.current_scale(), 4);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // Two finite steps in a row: the scale doubles.
  for (int i = 0; i < 2; ++i) {
    optimizer.zero_grad();
    scaler.scale(sum(w)).backward();
    EXPECT_TRUE(scaler.step(optimizer));
    scaler.update();
  }
  EXPECT_EQ(scaler.current_scale(), 8);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(LossScaler, ArgumentsAndOrderAreChecked) {
  const auto error = [](LossScalerOptions o) { return test::error_of([&] { DynamicLossScaler scaler(o); }); };
  EXPECT_NE(error({.init_scale = 0}).find("init_scale must be a finite number > 0"), std::string::npos);
  EXPECT_NE(error({.growth_factor = 1}).find("growth_factor must be > 1"), std::string::npos);
  EXPECT_NE(error({.backoff_factor = 1}).find("backoff_factor must be in (0, 1)"), std::string::npos);
  EXPECT_NE(error({.growth_interval = 0}).find("growth_interval must be > 0"), std::string::npos);
  DynamicLossScaler scaler;
  EXPECT_NE(test::error_of([&] { scaler.update(); }).find("update() before step() or unscale()"), std::string::npos);
  EXPECT_NE(test::error_of([&] { scaler.restore(-1, 0); }).find("cannot restore scale -1"), std::string::npos);
  scaler.restore(512, 7);
  EXPECT_EQ(scaler.current_scale(), 512);
  EXPECT_EQ(scaler.growth_tracker(), 7);
}

}  // namespace
}  // namespace effnet
