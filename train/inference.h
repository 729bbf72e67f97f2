// effnet_predict's work: predicting a set of images with saved runs, each with the model, crop and input
// size of the config.toml saved beside its weights, and voting their probabilities (ensemble/voting.h).
//
//   a checkpoint   a run directory (its best.safetensors), a .safetensors file in a run directory, or an
//                  all-folds run directory (each fold's best.safetensors, in fold order)
//   the images     the competition's eval/ set (--data ROOT: eval/info.csv order, ids = ImageID) or every
//                  image below a folder (--images DIR: sorted, ids = paths relative to DIR)
//   written        --probs-out DIR: model_<m>.csv per model (probability files, label -1), ensemble.csv,
//                  and models.csv (file,checkpoint,tta,weight); --submission FILE: ImageID,ans
// From probability files only (--ensemble a.csv b.csv ...): no model is loaded; the files are validated
// (same images in the same order, same classes) and voted the same way. With hflip TTA a model predicts
// each image and its mirror image and keeps the mean (train/predict.h).
#pragma once

#include <string>
#include <vector>

#include "ensemble/label_issues.h"
#include "ensemble/probability_file.h"
#include "ensemble/voting.h"
#include "train/config.h"

namespace effnet::train {

struct SavedModel {
  std::string weights;  // a .safetensors file
  TrainConfig config;   // the config.toml beside it
};
// The models a checkpoint argument names (see above); an Error naming the path when it is none of those.
std::vector<SavedModel> saved_models(const std::string& checkpoint);

struct PredictRequest {
  std::vector<std::string> checkpoints;
  std::vector<bool> hflip_tta;                 // per checkpoint (its folds alike); empty: none
  std::vector<std::string> probability_files;  // instead of checkpoints: ensemble these
  std::string data_root, images;               // one of them, with checkpoints
  std::string probs_out, submission;           // optional outputs (folder, file)
  std::string weights;                         // per model after expanding folds, e.g. "1,1,2"; "": equal
  std::string vote = "soft";
  std::string device = "cpu";
  int64_t batch_size = 0;  // 0: each run's batch size
  int64_t workers = -1;    // -1: each run's loader workers
};

// --tta: "none", "hflip" (every checkpoint), or one of them per checkpoint ("hflip,none"); an Error otherwise.
std::vector<bool> parse_tta(const std::string& text, size_t checkpoints);

// Runs the request (printing each model's images/s) and returns the ensemble.
ensemble::ProbabilityTable run_predict(const PredictRequest& request);

// --find-label-issues: ensemble/label_issues.h on an oof_probs.csv. The age threshold is the run's (the
// config.toml beside the file) unless given; the person issues go to `out` (default: label_issues.csv
// beside the file), the suspect images to `image_out` when given.
struct LabelIssueRequest {
  std::string oof_probs, out, image_out;
  int64_t age_threshold = 0;  // 0: the run's, or 60 without a config.toml
  double min_vote_fraction = 0.5;
};
std::vector<ensemble::PersonIssue> run_find_label_issues(const LabelIssueRequest& request);

}  // namespace effnet::train
