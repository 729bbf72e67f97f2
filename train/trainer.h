// The training run behind effnet_train: data, split, model, loss, optimizer and schedule from a
// TrainConfig; epochs of training and validation; the run directory:
//   config.toml        the resolved configuration (a resumed run reads it back)
//   split.csv          which people trained and which validated
//   metrics.csv        one row per epoch: epoch,train_loss,train_acc,val_loss,val_acc,val_macro_f1,lr,
//                      images_per_s,seconds
//   events.out.tfevents.*   the same scalars for TensorBoard
//   best.safetensors   the weights of the epoch with the best validation macro-F1
//   val_probs.csv      that epoch's validation probabilities (out-of-fold) with the true labels, a row per
//                      validation image in split order (an undecodable image's row holds the prediction of
//                      the image the loader replaced it with, as in test_probs.csv)
//   last.ckpt          model, optimizer, schedule, generator and loop state: `--resume RUN_DIR` continues
//                      exactly (an interrupted and resumed run ends with the metrics of an uninterrupted one)
//   test_probs.csv, submission.csv   with --predict, from the best weights
// A training epoch is every training image in batches of train.batch_size, the last one partial, except
// that a last batch of a single image is dropped (batch norm cannot train on it). A NaN or infinite loss
// stops the run with a message (last.ckpt stays the last good one); SIGINT or
// SIGTERM finishes the current step, writes last.ckpt and exits.
//
// data.fold = all (`--folds K --fold all`) trains the K folds one after another, each into RUN_DIR/fold_<i>/
// (a complete run directory as above: same seed, data.fold = i, so it equals a lone run of fold i), then
//   config.toml        the all-folds configuration (data.fold = "all")
//   oof_probs.csv      every training image's out-of-fold probabilities: the union of the folds'
//                      val_probs.csv rows, in dataset order (fold_0/split.csv's), columns id,label,p0..
//   cv_metrics.csv     fold,images,best_epoch,macro_f1,accuracy: a row per fold (its best epoch by
//                      validation macro-F1), `mean` (the folds' mean) and `oof` (the pooled out-of-fold
//                      probabilities' macro-F1 and accuracy, the cross-validated score, also printed)
//   test_probs.csv, submission.csv   with --predict: the soft vote (mean probabilities) of the folds'
//                      test_probs.csv, each fold having predicted the eval set with its best weights
// `--resume RUN_DIR` skips the finished folds (last.ckpt at the last epoch, and submission.csv if it
// predicts), resumes an interrupted fold exactly and starts the rest.
#pragma once

#include <cstdint>
#include <string>

#include "data/transforms.h"
#include "models/efficientnet.h"
#include "train/config.h"

namespace effnet::train {

struct RunOptions {
  std::string resume_dir;  // non-empty: continue this run (its config.toml wins over `config`)
  // Tests: behave as if SIGINT arrived after this many optimizer steps of this call, the folds of an
  // all-folds run counted together (0: never).
  int64_t interrupt_after_steps = 0;
};

// The model a config trains (variant, classes, head, dropout, drop path), for whatever rebuilds it from a
// run's config.toml.
EfficientNetOptions model_options(const TrainConfig& config);
// The transforms of a config: its augmentations when training, only the deterministic resize and crop
// otherwise (validation and prediction).
data::TransformConfig transforms_for(const TrainConfig& config, bool training);

// Returns the process exit code: 0 done, 3 stopped on a non-finite loss, 4 interrupted (resumable).
int run_training(TrainConfig config, const RunOptions& options);

}  // namespace effnet::train
