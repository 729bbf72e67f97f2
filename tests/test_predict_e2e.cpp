// The ensemble workflow end to end on tiny demo data: two folds trained with --fold all -> oof_probs.csv ->
// effnet_predict with both checkpoints (one with flip TTA) -> the ensemble recomputed from the saved
// probability files equals the live one -> --find-label-issues writes a relabel file the dataset loads.
// (That the finder recovers planted errors is LabelIssues.RecoversLabelErrorsPlantedInDemoData: a model
// trained for seconds is too weak to find any.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "data/dataset.h"
#include "data/image.h"
#include "data/transforms.h"
#include "ensemble/probability_file.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"
#include "tests/train_fixtures.h"
#include "train/inference.h"
#include "train/trainer.h"

namespace effnet::train {
namespace {

using ensemble::ProbabilityTable;
using ensemble::read_probabilities_csv;
using test::lines_of;

double max_difference(const ProbabilityTable& a, const ProbabilityTable& b) {
  EXPECT_EQ(a.ids, b.ids);
  const std::vector<double> x = a.probabilities.to_vector(), y = b.probabilities.to_vector();
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

class PredictWorkflow : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = test::write_tiny_demo("predict_e2e_data").release();
    runs_ = new test::TempDir("predict_e2e_runs");
    TrainConfig c = test::tiny_config(data_->path(), *runs_ / "cv");
    c.folds = 2;
    c.fold = "all";
    code_ = run_training(c, {});
  }
  static void TearDownTestSuite() {
    delete runs_;
    delete data_;
  }
  void SetUp() override { ASSERT_EQ(code_, 0) << "training the two folds failed"; }

  static std::string cv() { return *runs_ / "cv"; }

  static test::TempDir* data_;
  static test::TempDir* runs_;
  static int code_;
};
test::TempDir* PredictWorkflow::data_ = nullptr;
test::TempDir* PredictWorkflow::runs_ = nullptr;
int PredictWorkflow::code_ = -1;

TEST_F(PredictWorkflow, TwoCheckpointsOneWithTtaThenTheSameEnsembleFromTheSavedFiles) {
  PredictRequest live;
  live.checkpoints = {cv() + "/fold_0", cv() + "/fold_1/best.safetensors"};
  live.hflip_tta = {true, false};
  live.data_root = data_->path();
  live.probs_out = *runs_ / "probs";
  live.submission = *runs_ / "live_submission.csv";
  live.weights = "2,1";
  const ProbabilityTable ensemble = run_predict(live);

  // Eval order, one row per info.csv image.
  std::vector<std::string> image_ids;
  data::load_mask_eval(data_->path(), &image_ids);
  EXPECT_EQ(ensemble.ids, image_ids);
  EXPECT_EQ(lines_of(live.submission).size(), image_ids.size() + 1);
  const std::vector<std::string> listing = lines_of(live.probs_out + "/models.csv");
  ASSERT_EQ(listing.size(), 3u);
  EXPECT_EQ(listing[1], "model_0.csv," + cv() + "/fold_0/best.safetensors,hflip,2.000000");
  EXPECT_EQ(listing[2], "model_1.csv," + cv() + "/fold_1/best.safetensors,none,1.000000");

  // Without TTA, a checkpoint predicts what its training run predicted (the saved config's crop and model).
  const ProbabilityTable fold_1 = read_probabilities_csv(live.probs_out + "/model_1.csv");
  EXPECT_LT(max_difference(fold_1, read_probabilities_csv(cv() + "/fold_1/test_probs.csv")), 1e-6);

  // Voting the saved files gives the live ensemble and submission.
  PredictRequest from_files;
  from_files.probability_files = {live.probs_out + "/model_0.csv", live.probs_out + "/model_1.csv"};
  from_files.weights = "2,1";
  from_files.submission = *runs_ / "file_submission.csv";
  const ProbabilityTable recomputed = run_predict(from_files);
  EXPECT_LT(max_difference(recomputed, ensemble), 1e-7);
  EXPECT_LT(max_difference(recomputed, read_probabilities_csv(live.probs_out + "/ensemble.csv")), 1e-7);
  EXPECT_EQ(lines_of(from_files.submission), lines_of(live.submission));
}

TEST_F(PredictWorkflow, FlipTtaIsTheMeanOverEachImageAndItsMirrorImage) {
  // The eval images mirrored, as lossless PNGs named by ImageID. (40x32 photos cropped to 32x24 at the
  // centre lose 4 pixels on each side, so mirroring before the crop equals TTA's mirroring after it.)
  std::vector<std::string> image_ids;
  const data::Dataset eval = data::load_mask_eval(data_->path(), &image_ids);
  const std::string mirrored = *runs_ / "mirrored";
  std::filesystem::create_directories(mirrored);
  for (size_t i = 0; i < eval.samples.size(); ++i) {
    data::write_png(mirrored + "/" + image_ids[i] + ".png", data::flip_horizontal(data::decode_image(eval.samples[i].path)));
  }
  PredictRequest request;
  request.checkpoints = {cv() + "/fold_0"};
  request.data_root = data_->path();
  request.hflip_tta = {true};
  const ProbabilityTable tta = run_predict(request);
  request.hflip_tta = {false};
  const ProbabilityTable plain = run_predict(request);
  request.data_root.clear();
  request.images = mirrored;
  const ProbabilityTable flipped = run_predict(request);

  std::map<std::string, int64_t> flipped_row;
  for (int64_t r = 0; r < flipped.rows(); ++r) flipped_row[flipped.ids[r]] = r;
  const int64_t classes = tta.classes();
  const std::vector<double> t = tta.probabilities.to_vector(), p = plain.probabilities.to_vector(),
                            f = flipped.probabilities.to_vector();
  for (int64_t r = 0; r < tta.rows(); ++r) {
    const int64_t m = flipped_row.at(tta.ids[r] + ".png");
    for (int64_t c = 0; c < classes; ++c) {
      EXPECT_NEAR(t[r * classes + c], (p[r * classes + c] + f[m * classes + c]) / 2, 1e-6) << tta.ids[r] << " p" << c;
    }
  }
  EXPECT_GT(max_difference(tta, plain), 1e-4);  // the mirror image changes something
}

TEST_F(PredictWorkflow, OutOfFoldLabelIssuesAreARelabelFileTheDatasetLoads) {
  const ProbabilityTable oof = read_probabilities_csv(cv() + "/oof_probs.csv");
  const data::Dataset train = data::load_mask_train(data_->path());
  EXPECT_EQ(oof.rows(), static_cast<int64_t>(train.samples.size()));
  LabelIssueRequest request;
  request.oof_probs = cv() + "/oof_probs.csv";
  request.image_out = *runs_ / "image_issues.csv";
  const std::vector<ensemble::PersonIssue> issues = run_find_label_issues(request);
  const std::vector<std::string> written = lines_of(cv() + "/label_issues.csv");
  ASSERT_EQ(written.size(), issues.size() + 1);
  EXPECT_EQ(written[0], "path,field,value,given,suggested,votes,images,score");
  EXPECT_NO_THROW(data::load_mask_train(data_->path(), {60, cv() + "/label_issues.csv"}));
  EXPECT_EQ(lines_of(request.image_out)[0], "id,label,suggested,margin");
}

TEST(PredictArguments, TtaIsNoneHflipOrOnePerCheckpoint) {
  EXPECT_EQ(parse_tta("hflip", 3), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(parse_tta("none", 2), (std::vector<bool>{false, false}));
  EXPECT_EQ(parse_tta("hflip,none", 2), (std::vector<bool>{true, false}));
  EXPECT_EQ(parse_tta("none", 0), std::vector<bool>{});
  EXPECT_NE(test::error_of([] { parse_tta("vflip", 1); }).find("--tta: 'vflip' is not none or hflip"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { parse_tta("hflip,none", 3); }).find("--tta: 2 choices for 3 checkpoints"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { parse_tta("", 1); }).find("--tta: empty"), std::string::npos);
}

TEST_F(PredictWorkflow, BadRequestsSayWhatIsWrong) {
  PredictRequest r;
  EXPECT_NE(test::error_of([&] { run_predict(r); }).find("give checkpoints (--checkpoint) or probability files"),
            std::string::npos);
  r.checkpoints = {*runs_ / "nowhere"};
  r.data_root = data_->path();
  EXPECT_NE(test::error_of([&] { run_predict(r); }).find("no such run directory or weights file"), std::string::npos);
  r.checkpoints = {cv() + "/fold_0"};
  r.weights = "1,2";
  EXPECT_NE(test::error_of([&] { run_predict(r); }).find("--weights: 2 weights for 1 models"), std::string::npos);
  r.weights.clear();
  r.images = data_->path();
  EXPECT_NE(test::error_of([&] { run_predict(r); }).find("--data ROOT (its eval/ set) or --images FOLDER, one of them"),
            std::string::npos);
  PredictRequest files;
  files.probability_files = {cv() + "/test_probs.csv", cv() + "/oof_probs.csv"};
  EXPECT_NE(test::error_of([&] { run_predict(files); }).find("ensembles need the same images in the same order"),
            std::string::npos);
}

}  // namespace
}  // namespace effnet::train
