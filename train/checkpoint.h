// Checkpoints: everything a run needs to continue exactly where it stopped, in one safetensors file
// (written to a temporary file and renamed, so a crash never leaves half a checkpoint):
//   tensors   model.<name> (parameters and buffers), optimizer.<param>.<state>
//   metadata  optimizer.*, scheduler.*, and the loop's state: epoch and batch to continue from, the
//             partial sums of an interrupted epoch, the best macro-F1 so far, the default generator's
//             seed and offset (dropout and drop path draw from it), float16's loss scale
#pragma once

#include <cstdint>
#include <string>

#include "layers/module.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"

namespace effnet::train {

struct LoopState {
  int64_t epoch = 0;  // the epoch to run (or finish)
  int64_t batch = 0;  // batches of it already done
  double loss_sum = 0;  // over those batches: sum of batch loss x batch size
  int64_t correct = 0, seen = 0;
  double seconds = 0;  // training time of the epoch so far
  double best_macro_f1 = -1;
  int64_t best_epoch = -1;
  // float16 training's DynamicLossScaler (optim/loss_scaler.h): its scale and growth count; 0 without one.
  double loss_scale = 0;
  int64_t loss_scale_growth = 0;
};

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                     const LRScheduler& scheduler, const LoopState& state);
// Restores all of it (and the default generator); throws naming the file on any mismatch.
LoopState load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer, LRScheduler& scheduler);

}  // namespace effnet::train
