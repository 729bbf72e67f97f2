// The closed forms of optim/lr_scheduler.h, their argument checks and state save / restore.
#include "optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "optim/serialize.h"
#include "tensor/error.h"

namespace effnet {

const char* schedule_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Constant: return "constant";
    case ScheduleKind::Step: return "step";
    case ScheduleKind::MultiStep: return "multistep";
    case ScheduleKind::Cosine: return "cosine";
    case ScheduleKind::CosineWarmRestarts: return "cosine_warm_restarts";
  }
  return "?";
}

LRScheduler::LRScheduler(Optimizer& optimizer, LRScheduleOptions options)
    : optimizer_(optimizer), options_(std::move(options)) {
  const std::string where = std::string("LRScheduler (") + schedule_name(options_.kind) + ")";
  const LRScheduleOptions& o = options_;
  EFFNET_CHECK(o.step_size >= 1, where, ": step_size must be >= 1, got ", o.step_size);
  EFFNET_CHECK(std::isfinite(o.gamma) && o.gamma >= 0, where, ": gamma must be a finite number >= 0, got ", o.gamma);
  for (size_t i = 0; i < o.milestones.size(); ++i) {
    EFFNET_CHECK(o.milestones[i] >= 0 && (i == 0 || o.milestones[i] > o.milestones[i - 1]), where,
                 ": milestones must be >= 0 and strictly increasing, got ", o.milestones[i], " at position ", i);
  }
  EFFNET_CHECK(o.t_max >= 1, where, ": t_max must be >= 1, got ", o.t_max);
  EFFNET_CHECK(o.t_0 >= 1, where, ": t_0 must be >= 1, got ", o.t_0);
  EFFNET_CHECK(o.t_mult >= 1, where, ": t_mult must be >= 1, got ", o.t_mult);
  EFFNET_CHECK(std::isfinite(o.eta_min) && o.eta_min >= 0, where, ": eta_min must be a finite number >= 0, got ",
               o.eta_min);
  EFFNET_CHECK(o.warmup_steps >= 0, where, ": warmup_steps must be >= 0, got ", o.warmup_steps);
  EFFNET_CHECK(o.warmup_start_factor > 0 && o.warmup_start_factor <= 1, where,
               ": warmup_start_factor must be in (0, 1], got ", o.warmup_start_factor);
  for (size_t g = 0; g < optimizer_.group_count(); ++g) base_lrs_.push_back(optimizer_.lr(g));
  apply();
}

void LRScheduler::step_iteration() {
  if (options_.unit == ScheduleUnit::Iteration) advance();
}

void LRScheduler::step_epoch() {
  if (options_.unit == ScheduleUnit::Epoch) advance();
}

void LRScheduler::advance() {
  ++t_;
  apply();
}

void LRScheduler::apply() {
  for (size_t g = 0; g < base_lrs_.size(); ++g) optimizer_.set_lr(g, lr_at(base_lrs_[g], t_));
}

double LRScheduler::lr_at(double base, int64_t t) const {
  const int64_t w = options_.warmup_steps;
  if (t < w) {
    const double s = options_.warmup_start_factor;
    return base * (s + (1 - s) * static_cast<double>(t) / static_cast<double>(w));
  }
  return schedule_at(base, t - w);
}

double LRScheduler::schedule_at(double base, int64_t u) const {
  const LRScheduleOptions& o = options_;
  const auto cosine = [&](int64_t position, int64_t period) {
    const double angle = std::numbers::pi * static_cast<double>(position) / static_cast<double>(period);
    return o.eta_min + (base - o.eta_min) * (1 + std::cos(angle)) / 2;
  };
  switch (o.kind) {
    case ScheduleKind::Constant: return base;
    case ScheduleKind::Step: return base * std::pow(o.gamma, static_cast<double>(u / o.step_size));
    case ScheduleKind::MultiStep: {
      const auto passed = std::upper_bound(o.milestones.begin(), o.milestones.end(), u) - o.milestones.begin();
      return base * std::pow(o.gamma, static_cast<double>(passed));
    }
    case ScheduleKind::Cosine: return cosine(u, o.t_max);
    case ScheduleKind::CosineWarmRestarts: {
      if (o.t_mult == 1) return cosine(u % o.t_0, o.t_0);
      int64_t period = o.t_0;
      while (u >= period) {  // the periods grow geometrically: a few dozen turns at most
        u -= period;
        period *= o.t_mult;
      }
      return cosine(u, period);
    }
  }
  return base;
}

std::map<std::string, std::string> LRScheduler::state_dict() const {
  std::map<std::string, std::string> state;
  state["scheduler"] = schedule_name(options_.kind);
  state["t"] = std::to_string(t_);
  state["groups"] = std::to_string(base_lrs_.size());
  for (size_t g = 0; g < base_lrs_.size(); ++g) state["base_lr." + std::to_string(g)] = format_number(base_lrs_[g]);
  return state;
}

void LRScheduler::load_state_dict(const std::map<std::string, std::string>& state) {
  const std::string context = "LRScheduler: load_state_dict";
  const std::string& kind = metadata_value(state, "scheduler", context);
  EFFNET_CHECK(kind == schedule_name(options_.kind), context, ": the state is of a '", kind,
               "' schedule, expected '", schedule_name(options_.kind), "'");
  const int64_t groups = parse_integer(metadata_value(state, "groups", context), context + ": groups");
  EFFNET_CHECK(groups == static_cast<int64_t>(base_lrs_.size()), context, ": the state has ", groups,
               " groups, the optimizer ", base_lrs_.size());
  const int64_t t = parse_integer(metadata_value(state, "t", context), context + ": t");
  EFFNET_CHECK(t >= 0, context, ": t must be >= 0, got ", t);
  std::vector<double> base_lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const std::string key = "base_lr." + std::to_string(g);
    base_lrs.push_back(parse_number(metadata_value(state, key, context), context + ": " + key));
    EFFNET_CHECK(std::isfinite(base_lrs.back()) && base_lrs.back() >= 0, context, ": ", key,
                 " must be a finite number >= 0, got ", base_lrs.back());
  }
  base_lrs_ = std::move(base_lrs);
  t_ = t;
  apply();
}

}  // namespace effnet
