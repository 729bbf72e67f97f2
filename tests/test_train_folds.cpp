// effnet_train --fold all on a tiny demo dataset: the fold run directories, oof_probs.csv (every training
// image once, in dataset order, the union of the folds' val_probs.csv), cv_metrics.csv, the folds' soft-vote
// ensemble, an all-folds run interrupted twice and resumed that ends like an uninterrupted one, and data.fold
// as an integer or "all" in TOML and flags.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/dataset.h"
#include "data/demo_data.h"
#include "losses/metrics.h"
#include "tests/temp_dir.h"
#include "tests/train_fixtures.h"
#include "tests/test_util.h"
#include "train/config.h"
#include "train/trainer.h"

namespace effnet::train {
namespace {

using test::deterministic_columns;
using test::fields_of;
using test::lines_of;

constexpr int64_t kFolds = 3, kEpochs = 2, kBatch = 8;

std::string fold_dir(const std::string& run, int64_t k) { return run + "/fold_" + std::to_string(k); }

// Rows of a probabilities CSV as numbers, columns p0.. only.
std::vector<std::vector<double>> probabilities_of(const std::string& path) {
  std::vector<std::vector<double>> rows;
  const std::vector<std::string> lines = lines_of(path);
  for (size_t r = 1; r < lines.size(); ++r) {
    const std::vector<std::string> fields = fields_of(lines[r]);
    rows.emplace_back();
    for (size_t c = 2; c < fields.size(); ++c) rows.back().push_back(std::stod(fields[c]));
  }
  return rows;
}

int64_t argmax_of(const std::vector<double>& p) {
  return static_cast<int64_t>(std::max_element(p.begin(), p.end()) - p.begin());
}

// One uninterrupted all-folds run shared by the tests (three folds of two epochs: the slow part).
class TrainFolds : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = test::write_tiny_demo("train_folds_data").release();
    runs_ = new test::TempDir("train_folds_runs");
    straight_code_ = run_training(tiny(straight()), {});
  }
  static void TearDownTestSuite() {
    delete runs_;
    delete data_;
  }
  void SetUp() override { ASSERT_EQ(straight_code_, 0) << "the uninterrupted all-folds run failed"; }

  static TrainConfig tiny(const std::string& out) {
    TrainConfig c = test::tiny_config(data_->path(), out);
    c.rotation = 10;
    c.epochs = kEpochs;
    c.batch_size = kBatch;
    c.folds = kFolds;
    c.fold = "all";
    return c;
  }
  static std::string straight() { return *runs_ / "straight"; }
  // Optimizer steps of one fold: its training images in batches (the last one partial), every epoch.
  static int64_t steps_of_fold(int64_t k) {
    int64_t images = 0;
    for (const std::string& line : lines_of(fold_dir(straight(), k) + "/split.csv"))
      images += fields_of(line).back() == "train";
    return kEpochs * ((images + kBatch - 1) / kBatch);
  }

  static test::TempDir* data_;
  static test::TempDir* runs_;
  static int straight_code_;
};
test::TempDir* TrainFolds::data_ = nullptr;
test::TempDir* TrainFolds::runs_ = nullptr;
int TrainFolds::straight_code_ = -1;

TEST_F(TrainFolds, EachFoldIsACompleteRunDirectory) {
  for (int64_t k = 0; k < kFolds; ++k) {
    const std::string dir = fold_dir(straight(), k);
    for (const char* file : {"config.toml", "split.csv", "metrics.csv", "best.safetensors", "last.ckpt",
                             "val_probs.csv", "test_probs.csv", "submission.csv"}) {
      EXPECT_TRUE(std::filesystem::exists(dir + "/" + file)) << dir << "/" << file;
    }
    TrainConfig saved;
    load_toml(dir + "/config.toml", saved);
    EXPECT_EQ(saved.fold, std::to_string(k));
    EXPECT_EQ(saved.seed, 7u);
    EXPECT_EQ(lines_of(dir + "/metrics.csv").size(), static_cast<size_t>(kEpochs + 1));
  }
  TrainConfig saved;
  load_toml(straight() + "/config.toml", saved);
  EXPECT_EQ(saved.fold, "all");
}

TEST_F(TrainFolds, AFoldEqualsALoneRunOfThatFold) {
  TrainConfig lone = tiny(*runs_ / "lone_fold_1");
  lone.fold = "1";
  lone.predict = false;
  ASSERT_EQ(run_training(lone, {}), 0);
  EXPECT_EQ(lines_of(lone.out + "/val_probs.csv"), lines_of(fold_dir(straight(), 1) + "/val_probs.csv"));
  EXPECT_EQ(deterministic_columns(lone.out + "/metrics.csv"),
            deterministic_columns(fold_dir(straight(), 1) + "/metrics.csv"));
}

TEST_F(TrainFolds, OutOfFoldProbabilitiesCoverEveryTrainingImageOnce) {
  const data::Dataset dataset = data::load_mask_train(data_->path());
  const std::vector<std::string> oof = lines_of(straight() + "/oof_probs.csv");
  ASSERT_EQ(oof.size(), dataset.samples.size() + 1);
  EXPECT_EQ(oof[0], lines_of(fold_dir(straight(), 0) + "/val_probs.csv")[0]);
  EXPECT_EQ(oof[0].substr(0, 12), "id,label,p0,");
  EXPECT_EQ(fields_of(oof[0]).size(), 20u);
  for (size_t i = 0; i < dataset.samples.size(); ++i) {
    const std::vector<std::string> fields = fields_of(oof[i + 1]);
    EXPECT_EQ(fields[0], dataset.samples[i].path) << "row " << i + 1 << " is out of dataset order";
    EXPECT_EQ(std::stoll(fields[1]), dataset.samples[i].label) << fields[0];
  }
  // The union of the folds' rows, verbatim: each row of every val_probs.csv exactly once.
  std::vector<std::string> union_rows;
  for (int64_t k = 0; k < kFolds; ++k) {
    const std::vector<std::string> val = lines_of(fold_dir(straight(), k) + "/val_probs.csv");
    union_rows.insert(union_rows.end(), val.begin() + 1, val.end());
  }
  std::vector<std::string> oof_rows(oof.begin() + 1, oof.end());
  std::sort(union_rows.begin(), union_rows.end());
  std::sort(oof_rows.begin(), oof_rows.end());
  EXPECT_EQ(oof_rows, union_rows);
}

TEST_F(TrainFolds, CvMetricsHoldEachFoldsBestAndThePooledScore) {
  const std::vector<std::string> cv = lines_of(straight() + "/cv_metrics.csv");
  ASSERT_EQ(cv.size(), static_cast<size_t>(kFolds + 3));
  EXPECT_EQ(cv[0], "fold,images,best_epoch,macro_f1,accuracy");
  int64_t images = 0;
  double f1_sum = 0;
  for (int64_t k = 0; k < kFolds; ++k) {
    const std::vector<std::string> row = fields_of(cv[k + 1]);
    ASSERT_EQ(row.size(), 5u);
    EXPECT_EQ(row[0], std::to_string(k));
    EXPECT_EQ(std::stoll(row[1]), static_cast<int64_t>(lines_of(fold_dir(straight(), k) + "/val_probs.csv").size()) - 1);
    images += std::stoll(row[1]);
    double best = -1;
    std::string best_epoch;
    const std::vector<std::string> metrics = lines_of(fold_dir(straight(), k) + "/metrics.csv");
    for (size_t r = 1; r < metrics.size(); ++r) {
      const std::vector<std::string> m = fields_of(metrics[r]);
      if (std::stod(m[5]) > best) {
        best = std::stod(m[5]);
        best_epoch = m[0];
      }
    }
    EXPECT_EQ(row[2], best_epoch);
    EXPECT_NEAR(std::stod(row[3]), best, 1e-6);
    f1_sum += std::stod(row[3]);
  }
  const std::vector<std::string> mean = fields_of(cv[kFolds + 1]), oof = fields_of(cv[kFolds + 2]);
  EXPECT_EQ(mean[0], "mean");
  EXPECT_NEAR(std::stod(mean[3]), f1_sum / kFolds, 1e-6);
  ASSERT_EQ(oof.size(), 5u);
  EXPECT_EQ(oof[0], "oof");
  EXPECT_EQ(std::stoll(oof[1]), images);

  // The pooled score, recomputed from oof_probs.csv.
  ConfusionMatrix pooled(18);
  const std::vector<std::vector<double>> p = probabilities_of(straight() + "/oof_probs.csv");
  const std::vector<std::string> rows = lines_of(straight() + "/oof_probs.csv");
  ASSERT_EQ(static_cast<int64_t>(p.size()), images);
  for (size_t i = 0; i < p.size(); ++i) pooled.add({argmax_of(p[i])}, {std::stoll(fields_of(rows[i + 1])[1])});
  EXPECT_NEAR(std::stod(oof[3]), pooled.macro_f1(), 1e-6);
  EXPECT_NEAR(std::stod(oof[4]), pooled.accuracy(), 1e-6);
}

TEST_F(TrainFolds, PredictWritesTheMeanOfTheFoldsTestProbabilities) {
  const std::vector<std::vector<double>> ensemble = probabilities_of(straight() + "/test_probs.csv");
  std::vector<std::vector<std::vector<double>>> folds;
  for (int64_t k = 0; k < kFolds; ++k) folds.push_back(probabilities_of(fold_dir(straight(), k) + "/test_probs.csv"));
  const std::vector<std::string> info = lines_of(data_->path() + "/eval/info.csv");
  ASSERT_EQ(ensemble.size() + 1, info.size());
  const std::vector<std::string> test_probs = lines_of(straight() + "/test_probs.csv");
  const std::vector<std::string> submission = lines_of(straight() + "/submission.csv");
  ASSERT_EQ(submission.size(), info.size());
  EXPECT_EQ(submission[0], "ImageID,ans");
  for (size_t r = 0; r < ensemble.size(); ++r) {
    ASSERT_EQ(ensemble[r].size(), 18u);
    for (size_t c = 0; c < 18; ++c) {
      double mean = 0;
      for (const auto& fold : folds) mean += fold[r][c] / kFolds;
      EXPECT_NEAR(ensemble[r][c], mean, 1e-8 + 1e-7 * mean) << "row " << r << ", p" << c;
    }
    const std::string id = fields_of(info[r + 1])[0];
    EXPECT_EQ(fields_of(test_probs[r + 1])[0], id);
    EXPECT_EQ(fields_of(test_probs[r + 1])[1], "-1");
    EXPECT_EQ(submission[r + 1], id + "," + std::to_string(argmax_of(ensemble[r])));
  }
}

// Interrupted inside fold 1, resumed and interrupted again inside fold 2, resumed to the end: the same
// files as the uninterrupted run, and the finished folds were not touched again.
TEST_F(TrainFolds, InterruptedAndResumedAllFoldsRunEndsLikeAnUninterruptedOne) {
  const std::string dir = *runs_ / "interrupted";
  RunOptions first;
  first.interrupt_after_steps = steps_of_fold(0) + 5;
  ASSERT_EQ(run_training(tiny(dir), first), 4);
  EXPECT_TRUE(std::filesystem::exists(fold_dir(dir, 0) + "/submission.csv"));
  EXPECT_TRUE(std::filesystem::exists(fold_dir(dir, 1) + "/last.ckpt"));
  EXPECT_FALSE(std::filesystem::exists(fold_dir(dir, 1) + "/metrics.csv")) << "fold 1 stopped in its first epoch";
  EXPECT_FALSE(std::filesystem::exists(fold_dir(dir, 2)));
  EXPECT_FALSE(std::filesystem::exists(dir + "/oof_probs.csv"));
  const auto fold_0_saved = std::filesystem::last_write_time(fold_dir(dir, 0) + "/last.ckpt");

  RunOptions second;
  second.resume_dir = dir;
  second.interrupt_after_steps = steps_of_fold(1) - 5 + 3;
  ASSERT_EQ(run_training(TrainConfig{}, second), 4);
  EXPECT_TRUE(std::filesystem::exists(fold_dir(dir, 1) + "/submission.csv"));
  EXPECT_TRUE(std::filesystem::exists(fold_dir(dir, 2) + "/last.ckpt"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/cv_metrics.csv"));

  RunOptions last;
  last.resume_dir = dir;
  ASSERT_EQ(run_training(TrainConfig{}, last), 0);
  EXPECT_EQ(std::filesystem::last_write_time(fold_dir(dir, 0) + "/last.ckpt"), fold_0_saved) << "fold 0 was rerun";

  for (int64_t k = 0; k < kFolds; ++k) {
    EXPECT_EQ(deterministic_columns(fold_dir(dir, k) + "/metrics.csv"),
              deterministic_columns(fold_dir(straight(), k) + "/metrics.csv")) << "fold " << k;
  }
  for (const char* file : {"oof_probs.csv", "cv_metrics.csv", "test_probs.csv", "submission.csv"}) {
    EXPECT_EQ(lines_of(dir + "/" + file), lines_of(straight() + "/" + file)) << file;
  }
}

TEST_F(TrainFolds, AnExistingAllFoldsRunIsNotOverwritten) {
  const std::string error = test::error_of([] { run_training(tiny(straight()), {}); });
  EXPECT_NE(error.find("--resume " + straight()), std::string::npos) << error;
}

TEST(TrainConfig, FoldIsAnIntegerOrAll) {
  test::TempDir dir("train_config_fold");
  TrainConfig c;
  std::ofstream(dir / "int.toml") << "[data]\nfold = 2\n";
  load_toml(dir / "int.toml", c);
  EXPECT_EQ(c.fold, "2");
  EXPECT_FALSE(all_folds(c));
  EXPECT_EQ(fold_index(c), 2);
  std::ofstream(dir / "all.toml") << "[data]\nfold = \"all\"\n";
  load_toml(dir / "all.toml", c);
  EXPECT_TRUE(all_folds(c));
  std::ofstream(dir / "float.toml") << "[data]\nfold = 1.5\n";
  const std::string type = test::error_of([&] { load_toml(dir / "float.toml", c); });
  EXPECT_NE(type.find("'data.fold' must be a string or an integer"), std::string::npos) << type;

  // config.toml writes an index as an integer, "all" as a string; both read back.
  c.fold = "3";
  EXPECT_NE(to_toml(c).find("fold = 3\n"), std::string::npos);
  c.fold = "all";
  EXPECT_NE(to_toml(c).find("fold = 'all'\n"), std::string::npos);

  CLI::App app;
  TrainConfig flags;
  add_flags(app, flags);
  const char* argv[] = {"effnet_train", "--fold", "all", "--folds", "4"};
  app.parse(5, const_cast<char**>(argv));
  TrainConfig config;
  apply_given_flags(app, flags, config);
  EXPECT_EQ(config.fold, "all");
  EXPECT_EQ(config.folds, 4);

  TrainConfig v;
  v.data_root = "x";
  v.folds = 3;
  for (const char* bad : {"x", "3", "-1", "1.0", ""}) {
    v.fold = bad;
    const std::string error = test::error_of([&] { validate(v); });
    EXPECT_NE(error.find("accepted: all, or a fold index 0 .. 2"), std::string::npos) << bad << ": " << error;
  }
  v.fold = "all";
  v.val_ratio = 0.2;
  EXPECT_NE(test::error_of([&] { validate(v); }).find("data.val_ratio = 0"), std::string::npos);
}

}  // namespace
}  // namespace effnet::train
