// The training run behind effnet_train: data, split, model, loss, optimizer and schedule from a
// TrainConfig; epochs of training and validation; the run directory:
//   config.toml        the resolved configuration (a resumed run reads it back)
//   split.csv          which people trained and which validated
//   metrics.csv        one row per epoch: epoch,train_loss,train_acc,val_loss,val_acc,val_macro_f1,lr,
//                      images_per_s,seconds
//   events.out.tfevents.*   the same scalars for TensorBoard
//   best.safetensors   the weights of the epoch with the best validation macro-F1
//   val_probs.csv      that epoch's validation probabilities (out-of-fold) with the true labels
//   last.ckpt          model, optimizer, schedule, generator and loop state: `--resume RUN_DIR` continues
//                      exactly (an interrupted and resumed run ends with the metrics of an uninterrupted one)
//   test_probs.csv, submission.csv   with --predict, from the best weights
// A NaN or infinite loss stops the run with a message (last.ckpt stays the last good one); SIGINT or
// SIGTERM finishes the current step, writes last.ckpt and exits.
#pragma once

#include <cstdint>
#include <string>

#include "train/config.h"

namespace effnet::train {

struct RunOptions {
  std::string resume_dir;  // non-empty: continue this run (its config.toml wins over `config`)
  // Tests: behave as if SIGINT arrived after this many optimizer steps (0: never).
  int64_t interrupt_after_steps = 0;
};

// Returns the process exit code: 0 done, 3 stopped on a non-finite loss, 4 interrupted (resumable).
int run_training(TrainConfig config, const RunOptions& options);

}  // namespace effnet::train
