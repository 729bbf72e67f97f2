#include "optim/loss_scaler.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "optim/clip_grad.h"
#include "tensor/ops.h"

namespace effnet {

DynamicLossScaler::DynamicLossScaler(LossScalerOptions options) : options_(options), scale_(options.init_scale) {
  EFFNET_CHECK(std::isfinite(options.init_scale) && options.init_scale > 0, "loss scaler: init_scale must be a "
               "finite number > 0, got ", options.init_scale);
  EFFNET_CHECK(options.growth_factor > 1, "loss scaler: growth_factor must be > 1, got ", options.growth_factor);
  EFFNET_CHECK(options.backoff_factor > 0 && options.backoff_factor < 1,
               "loss scaler: backoff_factor must be in (0, 1), got ", options.backoff_factor);
  EFFNET_CHECK(options.growth_interval > 0, "loss scaler: growth_interval must be > 0, got ",
               options.growth_interval);
}

Tensor DynamicLossScaler::scale(const Tensor& loss) const { return mul(loss, scale_); }

void DynamicLossScaler::unscale(Optimizer& optimizer) {
  EFFNET_CHECK(!unscaled_, "loss scaler: unscale called twice before update()");
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> params;
  for (size_t g = 0; g < optimizer.group_count(); ++g) {
    for (const auto& named : optimizer.group_params(g)) params.push_back(named.second);
  }
  // GradScaler multiplies by the float32 reciprocal of the scale.
  const double inverse = static_cast<double>(static_cast<float>(1.0 / scale_));
  for (const Tensor& param : params) {
    Tensor grad = param.grad();  // a handle on the same storage
    if (grad.defined()) grad.mul_(inverse);
  }
  found_nonfinite_ = !std::isfinite(grad_norm(params).item());
  unscaled_ = true;
}

bool DynamicLossScaler::step(Optimizer& optimizer) {
  if (!unscaled_) unscale(optimizer);
  if (found_nonfinite_) return false;
  optimizer.step();
  return true;
}

void DynamicLossScaler::update() {
  EFFNET_CHECK(unscaled_, "loss scaler: update() before step() or unscale()");
  if (found_nonfinite_) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
  unscaled_ = false;
}

void DynamicLossScaler::abandon_step() {
  unscaled_ = false;
  found_nonfinite_ = false;
}

void DynamicLossScaler::restore(double scale, int64_t growth_tracker) {
  EFFNET_CHECK(std::isfinite(scale) && scale > 0 && growth_tracker >= 0 && growth_tracker < options_.growth_interval,
               "loss scaler: cannot restore scale ", scale, " with growth tracker ", growth_tracker);
  scale_ = scale;
  growth_tracker_ = growth_tracker;
  unscaled_ = false;
}

bool backward_and_step(const Tensor& loss, Optimizer& optimizer, DynamicLossScaler* scaler, double clip,
                       const std::vector<Tensor>& clipped) {
  if (scaler == nullptr) {
    loss.backward();
    if (clip > 0) clip_grad_norm(clipped, clip);
    optimizer.step();
    return true;
  }
  try {
    scaler->scale(loss).backward();
    if (clip > 0) {
      scaler->unscale(optimizer);
      clip_grad_norm(clipped, clip);
    }
    const bool stepped = scaler->step(optimizer);
    scaler->update();
    return stepped;
  } catch (...) {
    scaler->abandon_step();
    throw;
  }
}

}  // namespace effnet
