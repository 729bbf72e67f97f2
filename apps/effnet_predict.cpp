// effnet_predict: predictions, ensembles and label issues from saved runs (train/inference.h).
//
//   effnet_predict --checkpoint runs/b4_cv --checkpoint runs/b3_cv --data ROOT --probs-out probs
//                  --submission submission.csv [--tta hflip] [--weights 1,1,...] [--vote soft|hard]
//   effnet_predict --ensemble runs/a/test_probs.csv runs/b/test_probs.csv --submission submission.csv
//   effnet_predict --find-label-issues runs/b4_cv/oof_probs.csv [--out label_issues.csv]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "tensor/error.h"
#include "train/inference.h"

using namespace effnet;

int main(int argc, char** argv) {
  CLI::App app("effnet_predict: predict with saved runs, ensemble probability files, find label issues");
  train::PredictRequest predict;
  train::LabelIssueRequest issues;
  std::string tta = "none";
  app.add_option("--checkpoint", predict.checkpoints,
                 "a run directory (its best weights), an all-folds run (every fold) or a .safetensors file in a "
                 "run directory; repeat for an ensemble");
  app.add_option("--ensemble", predict.probability_files, "probability files to vote (no model is loaded)")
      ->check(CLI::ExistingFile);
  app.add_option("--data", predict.data_root, "predict the eval/ set of this competition-layout root")
      ->check(CLI::ExistingDirectory);
  app.add_option("--images", predict.images, "predict every image below this folder")
      ->check(CLI::ExistingDirectory);
  app.add_option("--probs-out", predict.probs_out, "folder for each model's probabilities and the ensemble's");
  app.add_option("--submission", predict.submission, "write ImageID,ans here");
  app.add_option("--weights", predict.weights, "a weight per model (folds expanded), e.g. 1,1,2; default equal");
  app.add_option("--vote", predict.vote, "soft (mean probability) or hard (majority)")
      ->check(CLI::IsMember({"soft", "hard"}));
  app.add_option("--tta", tta, "none, hflip, or one per --checkpoint (hflip,none)");
  app.add_option("--device", predict.device, "cpu or cuda[:N]");
  app.add_option("--batch-size", predict.batch_size, "default: each run's")->check(CLI::PositiveNumber);
  app.add_option("--workers", predict.workers, "loader threads; default: each run's")->check(CLI::NonNegativeNumber);
  app.add_option("--find-label-issues", issues.oof_probs, "an oof_probs.csv: write the suspected label errors")
      ->check(CLI::ExistingFile);
  app.add_option("--out", issues.out, "with --find-label-issues: the relabel-format CSV to write");
  app.add_option("--image-issues", issues.image_out, "with --find-label-issues: also list the suspect images");
  app.add_option("--age-threshold", issues.age_threshold, "with --find-label-issues; default: the run's")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-votes", issues.min_vote_fraction,
                 "with --find-label-issues: the fraction of a person's images that must agree")
      ->check(CLI::Range(0.01, 1.0));
  CLI11_PARSE(app, argc, argv);
  try {
    if (!issues.oof_probs.empty()) {
      EFFNET_CHECK(predict.checkpoints.empty() && predict.probability_files.empty(),
                   "--find-label-issues runs on its own (no --checkpoint or --ensemble)");
      train::run_find_label_issues(issues);
      return 0;
    }
    EFFNET_CHECK(tta == "none" || !predict.checkpoints.empty(), "--tta needs --checkpoint (files are voted as saved)");
    predict.hflip_tta = train::parse_tta(tta, predict.checkpoints.size());
    train::run_predict(predict);
    return 0;
  } catch (const std::exception& e) {  // effnet::Error, or a file-system or library error
    std::fprintf(stderr, "effnet_predict: %s\n", e.what());
    return 2;
  }
}
