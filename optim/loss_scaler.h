// Dynamic loss scaling for float16 training, as torch.amp.GradScaler: float16 gradients underflow to zero
// below 2^-24, so the loss is multiplied by a large scale S before backward, and the gradients divided by S
// before the optimizer sees them. S adapts: a step whose gradients hold an infinity or NaN (S too large:
// an overflow) is skipped and S halved; after `growth_interval` finite steps in a row S doubles.
//
//   scale(loss)    loss * S
//   unscale(opt)   every gradient of opt's parameters *= 1 / S (in place; S a power of two: exact), and
//                  records whether all are finite (one multi-tensor norm; the host waits for it)
//   step(opt)      unscale (unless done, e.g. for gradient clipping in between), then opt.step() only if
//                  the gradients were finite; returns whether it stepped
//   update()       S *= backoff_factor after a skipped step (the growth count restarts), else count the
//                  step and S *= growth_factor every growth_interval of them
//   abandon_step() after an error between scale() and update() (out of memory): S and the count stay,
//                  the unscaling is forgotten; the caller drops the step's gradients
// The same rules, defaults and order as GradScaler (tests/fixtures/loss_scaler.safetensors replays one of
// its runs). bfloat16 has float32's range and needs no scaling.
#pragma once

#include <cstdint>

#include "optim/optimizer.h"

namespace effnet {

struct LossScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class DynamicLossScaler {
 public:
  explicit DynamicLossScaler(LossScalerOptions options = {});

  Tensor scale(const Tensor& loss) const;
  void unscale(Optimizer& optimizer);
  bool step(Optimizer& optimizer);
  void update();
  void abandon_step();

  double current_scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  // For checkpoints: a resumed run continues with the same scale and count.
  void restore(double scale, int64_t growth_tracker);

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  bool unscaled_ = false, found_nonfinite_ = false;
};

// One training step from a loss: backward, then, when clip > 0, the global norm of `clipped`'s gradients
// clipped to it, then the optimizer's step — through `scaler` when there is one (float16), which scales the
// loss, unscales the gradients before clipping, and skips the step on an overflow. The caller zeroes the
// gradients. Returns whether the optimizer stepped. An error on the way (out of memory) abandons the step in
// the scaler too; the gradients are left as they were, for the caller to drop.
bool backward_and_step(const Tensor& loss, Optimizer& optimizer, DynamicLossScaler* scaler, double clip = 0,
                       const std::vector<Tensor>& clipped = {});

}  // namespace effnet
