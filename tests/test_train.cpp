// effnet_train end to end on a tiny demo dataset: configuration, the training loop, the run directory,
// an interrupted and resumed run that ends with the metrics of an uninterrupted one, prediction and the
// submission, TensorBoard files, and a diverging run stopped on its non-finite loss.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/demo_data.h"
#include "io/tensorboard.h"
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

class TrainEndToEnd : public testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = test::write_tiny_demo("train_e2e_data").release(); }
  static void TearDownTestSuite() { delete data_; }

  TrainConfig tiny(const std::string& out) const {
    TrainConfig c = test::tiny_config(data_->path(), out);
    c.rotation = 10;
    c.lr = 1e-3;
    c.workers = 2;
    c.drop_path = 0.1;
    return c;
  }

  static test::TempDir* data_;
};
test::TempDir* TrainEndToEnd::data_ = nullptr;

TEST_F(TrainEndToEnd, InterruptedAndResumedRunEndsLikeAnUninterruptedOne) {
  test::TempDir runs("train_e2e_runs");
  const std::string straight = runs / "straight", interrupted = runs / "interrupted";
  ASSERT_EQ(run_training(tiny(straight), {}), 0);

  RunOptions stop_early;
  stop_early.interrupt_after_steps = 5;  // inside the first epoch
  ASSERT_EQ(run_training(tiny(interrupted), stop_early), 4);
  EXPECT_TRUE(std::filesystem::exists(interrupted + "/last.ckpt"));
  EXPECT_FALSE(std::filesystem::exists(interrupted + "/metrics.csv")) << "no epoch was finished";
  RunOptions resume;
  resume.resume_dir = interrupted;
  ASSERT_EQ(run_training(TrainConfig{}, resume), 0);

  const std::vector<std::string> a = deterministic_columns(straight + "/metrics.csv");
  const std::vector<std::string> b = deterministic_columns(interrupted + "/metrics.csv");
  ASSERT_EQ(a.size(), 3u);  // header + 2 epochs
  EXPECT_EQ(a[0], "epoch,train_loss,train_acc,val_loss,val_acc,val_macro_f1,lr,");
  EXPECT_EQ(a, b);
  EXPECT_EQ(lines_of(straight + "/submission.csv"), lines_of(interrupted + "/submission.csv"));
}

// Mixed precision and channels-last through the whole loop: float16 with loss scaling, interrupted and
// resumed (the scale travels in last.ckpt), ends like an uninterrupted run; the saved config says so.
TEST_F(TrainEndToEnd, Float16ChannelsLastRunResumesLikeAnUninterruptedOne) {
  test::TempDir runs("train_fp16_runs");
  const std::string straight = runs / "straight", interrupted = runs / "interrupted";
  TrainConfig c = tiny(straight);
  c.precision = "fp16";
  c.channels_last = true;
  c.epochs = 1;
  c.predict = false;
  ASSERT_EQ(run_training(c, {}), 0);
  c.out = interrupted;
  RunOptions stop_early;
  stop_early.interrupt_after_steps = 3;
  ASSERT_EQ(run_training(c, stop_early), 4);
  RunOptions resume;
  resume.resume_dir = interrupted;
  ASSERT_EQ(run_training(TrainConfig{}, resume), 0);
  EXPECT_EQ(deterministic_columns(straight + "/metrics.csv"), deterministic_columns(interrupted + "/metrics.csv"));
  const std::vector<std::string> config = lines_of(interrupted + "/config.toml");
  EXPECT_NE(std::find(config.begin(), config.end(), "precision = 'fp16'"), config.end());
  EXPECT_NE(std::find(config.begin(), config.end(), "channels_last = true"), config.end());
  const std::vector<std::string> metrics = fields_of(lines_of(straight + "/metrics.csv").at(1));
  EXPECT_TRUE(std::isfinite(std::stod(metrics.at(1)))) << "train loss " << metrics.at(1);
}

TEST_F(TrainEndToEnd, RunDirectoryHoldsEverything) {
  test::TempDir runs("train_e2e_files");
  const std::string dir = runs / "run";
  ASSERT_EQ(run_training(tiny(dir), {}), 0);
  for (const char* file : {"config.toml", "split.csv", "metrics.csv", "best.safetensors", "last.ckpt",
                           "val_probs.csv", "test_probs.csv", "submission.csv"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + file)) << file;
  }
  // The saved config reads back to the same configuration.
  TrainConfig reread;
  load_toml(dir + "/config.toml", reread);
  EXPECT_EQ(to_toml(reread), to_toml(tiny(dir)));

  // submission.csv: ImageID,ans in info.csv order, one row per eval image, classes in [0, 18).
  const std::vector<std::string> submission = lines_of(dir + "/submission.csv");
  const std::vector<std::string> info = lines_of(data_->path() + "/eval/info.csv");
  ASSERT_EQ(submission.size(), info.size());
  EXPECT_EQ(submission[0], "ImageID,ans");
  for (size_t i = 1; i < submission.size(); ++i) {
    const size_t comma = submission[i].find(',');
    EXPECT_EQ(submission[i].substr(0, comma), info[i].substr(0, info[i].find(','))) << "row " << i;
    const int answer = std::stoi(submission[i].substr(comma + 1));
    EXPECT_TRUE(answer >= 0 && answer < 18) << submission[i];
  }
  const std::vector<std::string> test_probs = lines_of(dir + "/test_probs.csv");
  ASSERT_EQ(test_probs.size(), info.size());
  EXPECT_EQ(test_probs[0].substr(0, 12), "id,label,p0,");

  // TensorBoard: one event file whose records carry every scalar tag.
  std::string events;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) {
      std::ifstream in(entry.path(), std::ios::binary);
      events.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  for (const char* tag : {"train/loss", "train/acc", "val/loss", "val/acc", "val/macro_f1", "lr", "images_per_s"}) {
    EXPECT_NE(events.find(tag), std::string::npos) << tag;
  }
}

TEST_F(TrainEndToEnd, ANonFiniteLossStopsTheRun) {
  test::TempDir runs("train_e2e_nan");
  TrainConfig c = tiny(runs / "run");
  c.optimizer = "sgd";
  c.momentum = 0;
  c.lr = 1e30;  // the first update makes the weights infinite
  c.predict = false;
  EXPECT_EQ(run_training(c, {}), 3);
  EXPECT_FALSE(std::filesystem::exists(runs / "run/best.safetensors"));
}

TEST_F(TrainEndToEnd, AnExistingRunIsNotOverwritten) {
  test::TempDir runs("train_e2e_twice");
  TrainConfig c = tiny(runs / "run");
  c.epochs = 1;
  c.predict = false;
  ASSERT_EQ(run_training(c, {}), 0);
  EXPECT_NE(test::error_of([&] { run_training(c, {}); }).find("--resume"), std::string::npos);
}

TEST(TrainConfig, TomlThenFlagsOverride) {
  test::TempDir dir("train_config");
  std::ofstream(dir / "c.toml") << "[model]\nname = \"efficientnet_b4\"\ndropout = 0.7\n[train]\nlr = 1e-4\n";
  CLI::App app;
  TrainConfig flags;
  add_flags(app, flags);
  const char* argv[] = {"effnet_train", "--lr", "0.01", "--crop", "384x320"};
  app.parse(5, const_cast<char**>(argv));
  TrainConfig config;
  load_toml(dir / "c.toml", config);
  apply_given_flags(app, flags, config);
  EXPECT_EQ(config.model, "efficientnet_b4");  // from the file
  EXPECT_EQ(config.dropout, 0.7);              // from the file
  EXPECT_EQ(config.lr, 0.01);                  // the flag wins
  EXPECT_EQ(config.crop, "384x320");
  EXPECT_EQ(config.epochs, TrainConfig{}.epochs);  // the default
}

TEST(TrainConfig, ErrorsSayWhatIsAccepted) {
  test::TempDir dir("train_config_errors");
  std::ofstream(dir / "bad.toml") << "[train]\nlearning_rate = 0.1\n";
  TrainConfig config;
  const std::string unknown = test::error_of([&] { load_toml(dir / "bad.toml", config); });
  EXPECT_NE(unknown.find("unknown key 'train.learning_rate'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("lr"), std::string::npos) << unknown;
  std::ofstream(dir / "type.toml") << "[train]\nepochs = \"ten\"\n";
  EXPECT_NE(test::error_of([&] { load_toml(dir / "type.toml", config); }).find("must be an integer"),
            std::string::npos);
  TrainConfig c;
  c.data_root = "x";
  c.optimizer = "rmsprop";
  const std::string bad_choice = test::error_of([&] { validate(c); });
  EXPECT_NE(bad_choice.find("adamp"), std::string::npos) << bad_choice;
  EXPECT_NE(test::error_of([] { parse_size("384y320", "--crop"); }).find("HxW"), std::string::npos);
}

}  // namespace
}  // namespace effnet::train
