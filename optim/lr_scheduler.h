// Learning-rate schedules: the learning rate of each parameter group as a closed-form function of t, the
// number of schedule steps taken (iterations or epochs, as chosen), applied to the optimizer after every
// step. Legend: b the group's base lr (its lr when the scheduler was made), w warmup_steps, s the warmup's
// start factor, u = t - w the schedule's own clock once the warmup is over.
//
//   Constant            b                                                        (the recipe's)
//   Step                b gamma^floor(u / step_size)                             (torch StepLR)
//   MultiStep           b gamma^(number of milestones <= u)                      (torch MultiStepLR)
//   Cosine              eta_min + (b - eta_min) (1 + cos(pi u / t_max)) / 2      (torch CosineAnnealingLR)
//   CosineWarmRestarts  the cosine over u' = u minus the periods already done, of lengths t_0, t_0 t_mult,
//                       t_0 t_mult^2, ...                                        (torch CosineAnnealingWarmRestarts)
//   warmup (w > 0)      for t < w: b (s + (1 - s) t / w), then the schedule at u  (torch SequentialLR of
//                       LinearLR(s, total_iters=w) and the schedule, milestone w)
//
// Closed forms rather than torch's recursive updates: the same values to rounding (about 1e-15 of b), and
// a schedule resumed at any t continues exactly. The state (t and the base lrs) saves as string metadata.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace effnet {

enum class ScheduleKind { Constant, Step, MultiStep, Cosine, CosineWarmRestarts };
enum class ScheduleUnit { Iteration, Epoch };  // which of step_iteration / step_epoch advances t

struct LRScheduleOptions {
  ScheduleKind kind = ScheduleKind::Constant;
  ScheduleUnit unit = ScheduleUnit::Epoch;
  int64_t step_size = 1;            // Step
  std::vector<int64_t> milestones = {};  // MultiStep: strictly increasing, >= 0
  double gamma = 0.1;               // Step, MultiStep
  int64_t t_max = 1;                // Cosine
  int64_t t_0 = 1;                  // CosineWarmRestarts: the first period
  int64_t t_mult = 1;               // CosineWarmRestarts: each period is t_mult times the last
  double eta_min = 0;               // Cosine, CosineWarmRestarts
  int64_t warmup_steps = 0;
  double warmup_start_factor = 1.0 / 3.0;  // torch LinearLR's default
};

const char* schedule_name(ScheduleKind kind);

class LRScheduler {
 public:
  // Records each group's lr as its base lr and sets the lr for t = 0.
  LRScheduler(Optimizer& optimizer, LRScheduleOptions options);

  // Call after each optimizer step and after each epoch; the one matching options.unit advances t.
  void step_iteration();
  void step_epoch();

  int64_t t() const { return t_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // The learning rate of a group with base lr `base` at schedule time t.
  double lr_at(double base, int64_t t) const;

  std::map<std::string, std::string> state_dict() const;
  // Restores t and the base lrs (the schedule's kind must match) and sets the optimizer's lrs for that t.
  void load_state_dict(const std::map<std::string, std::string>& state);

 private:
  void advance();
  void apply();
  double schedule_at(double base, int64_t u) const;

  Optimizer& optimizer_;
  LRScheduleOptions options_;
  std::vector<double> base_lrs_;
  int64_t t_ = 0;
};

}  // namespace effnet
