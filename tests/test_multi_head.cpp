// The three-head model (mask, gender, age): the joint log-probabilities are the products of the heads'
// probabilities, float64 gradient checks of that composition and of the multi-head loss, the model's heads
// and names, the head-weight option, and effnet_train with --head multi end to end on tiny demo data.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "data/demo_data.h"
#include "io/safetensors.h"
#include "losses/losses.h"
#include "losses/multi_head.h"
#include "models/efficientnet.h"
#include "models/summary.h"
#include "models/weights.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/temp_dir.h"
#include "tests/train_fixtures.h"
#include "tests/test_util.h"
#include "train/config.h"
#include "train/trainer.h"

namespace effnet {
namespace {

using test::lines_of;

MaskHeadLogits random_heads(int64_t n, DType dtype) {
  return {randn({n, 3}, dtype) * 2.0, randn({n, 2}, dtype) * 2.0, randn({n, 3}, dtype) * 2.0};
}

// exp(joint)[i, m * 6 + g * 3 + a] against softmax(mask)[m] softmax(gender)[g] softmax(age)[a].
void expect_products(const MaskHeadLogits& heads, const Tensor& joint_log_probs, double tolerance) {
  const int64_t n = heads.mask.size(0);
  ASSERT_EQ(joint_log_probs.shape(), (Shape{n, 18}));
  const std::vector<double> joint = exp(joint_log_probs).to_vector();
  const std::vector<double> pm = softmax(heads.mask, 1).to_vector(), pg = softmax(heads.gender, 1).to_vector(),
                            pa = softmax(heads.age, 1).to_vector();
  for (int64_t i = 0; i < n; ++i) {
    double row = 0;
    for (int64_t m = 0; m < 3; ++m)
      for (int64_t g = 0; g < 2; ++g)
        for (int64_t a = 0; a < 3; ++a) {
          const double p = joint[i * 18 + m * 6 + g * 3 + a];
          EXPECT_NEAR(p, pm[i * 3 + m] * pg[i * 2 + g] * pa[i * 3 + a], tolerance) << i << " " << m << g << a;
          row += p;
        }
    EXPECT_NEAR(row, 1.0, tolerance) << "row " << i;
  }
}

TEST(MultiHead, JointProbabilitiesAreProductsOfTheHeads) {
  manual_seed(3);
  const MaskHeadLogits heads = random_heads(5, kFloat64);
  const Tensor joint = mask_joint_log_probs(heads);
  expect_products(heads, joint, 1e-12);
  // Already normalised: softmax (what val_probs.csv and predictions apply) leaves the products unchanged.
  const std::vector<double> a = softmax(joint, 1).to_vector(), b = exp(joint).to_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12);
}

TEST(MultiHead, JointLogProbabilitiesMatchFiniteDifferences) {
  manual_seed(4);
  MaskHeadLogits heads = random_heads(4, kFloat64);
  for (Tensor* t : {&heads.mask, &heads.gender, &heads.age}) t->requires_grad_();
  const autograd::GradcheckResult r =
      autograd::gradcheck([&] { return mask_joint_log_probs(heads); }, {heads.mask, heads.gender, heads.age});
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 4 * (3 + 2 + 3));
}

TEST(MultiHead, TargetsFactorAsMaskGenderAge) {
  std::vector<double> all;
  for (int64_t t = 0; t < 18; ++t) all.push_back(static_cast<double>(t));
  const std::array<Tensor, kMaskHeadCount> heads = mask_head_targets(from_vector(all, {18}, kInt64));
  const std::vector<double> mask = heads[0].to_vector(), gender = heads[1].to_vector(), age = heads[2].to_vector();
  for (int64_t t = 0; t < 18; ++t) {
    EXPECT_EQ(mask[t] * 6 + gender[t] * 3 + age[t], static_cast<double>(t));
    EXPECT_EQ(heads[0].dtype(), kInt64);
  }
  EXPECT_EQ(mask[7], 1);  // incorrect_mask, male, 30-59
  EXPECT_EQ(gender[7], 0);
  EXPECT_EQ(age[7], 1);
  const std::string error = test::error_of([] { mask_head_targets(from_vector({3, 18}, {2}, kInt64)); });
  EXPECT_NE(error.find("target 1 is 18"), std::string::npos) << error;
}

// The loss equals the weighted sum of the per-head losses, and its gradient matches finite differences,
// with per-head class weights, label smoothing and a mixed loss spec.
TEST(MultiHead, LossIsTheWeightedSumOfTheHeadsAndMatchesFiniteDifferences) {
  manual_seed(6);
  const int64_t n = 6;
  MaskHeadLogits heads = random_heads(n, kFloat64);
  for (Tensor* t : {&heads.mask, &heads.gender, &heads.age}) t->requires_grad_();
  const Tensor targets = from_vector({0, 17, 7, 10, 3, 14}, {n}, kInt64);
  std::array<LossOptions, kMaskHeadCount> options;
  for (int64_t h = 0; h < kMaskHeadCount; ++h) {
    options[h].class_weights = rand({kMaskHeadClasses[h]}, kFloat64) * 1.5 + 0.25;
    options[h].label_smoothing = 0.1;
  }
  const std::array<double, kMaskHeadCount> weights = {1.0, 0.5, 2.0};
  const MultiHeadLoss loss("ce:0.7+focal:0.2+f1:0.1", weights, options);

  const std::array<Tensor, kMaskHeadCount> head_targets = mask_head_targets(targets);
  double expected = 0;
  for (int64_t h = 0; h < kMaskHeadCount; ++h) {
    expected += weights[h] * WeightedLoss("ce:0.7+focal:0.2+f1:0.1", options[h])(heads[h], head_targets[h]).item();
  }
  EXPECT_NEAR(loss(heads, targets).item(), expected, 1e-12);

  const autograd::GradcheckResult r =
      autograd::gradcheck([&] { return loss(heads, targets); }, {heads.mask, heads.gender, heads.age});
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, n * 8);

  // A head of weight 0 adds nothing and gets no gradient.
  const MultiHeadLoss mask_only("ce", {1.0, 0.0, 0.0}, {LossOptions{}, LossOptions{}, LossOptions{}});
  EXPECT_NEAR(mask_only(heads, targets).item(), cross_entropy(heads.mask, head_targets[0]).item(), 1e-12);
}

TEST(MultiHead, HeadWeightsParseAndSayWhatIsAccepted) {
  EXPECT_EQ(parse_head_weights("1,1,1", "w"), (std::array<double, 3>{1, 1, 1}));
  EXPECT_EQ(parse_head_weights(" 2, 0.5 ,0", "w"), (std::array<double, 3>{2, 0.5, 0}));
  for (const char* bad : {"1,1", "1,1,1,1", "a,1,1", "-1,1,1", "0,0,0", "", "1,,1", "inf,1,1"}) {
    const std::string error = test::error_of([&] { parse_head_weights(bad, "train.head_weights"); });
    EXPECT_NE(error.find("train.head_weights is '" + std::string(bad) + "'"), std::string::npos) << error;
    EXPECT_NE(error.find("mask"), std::string::npos) << error;
  }
}

EfficientNetOptions multi_head_b0() {
  EfficientNetOptions o = efficientnet_options("efficientnet_b0");
  o.num_classes = 18;
  o.head = ClassifierHead::Multi;
  return o;
}

TEST(MultiHead, ModelHasThreeNamedHeadsAndReturnsJointLogProbabilities) {
  manual_seed(8);
  EfficientNet model(multi_head_b0());
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : model.state_dict()) shapes[name] = t.shape();
  EXPECT_EQ(shapes["classifier_mask.weight"], (Shape{3, 1280}));
  EXPECT_EQ(shapes["classifier_mask.bias"], (Shape{3}));
  EXPECT_EQ(shapes["classifier_gender.weight"], (Shape{2, 1280}));
  EXPECT_EQ(shapes["classifier_age.weight"], (Shape{3, 1280}));
  EXPECT_EQ(shapes.count("classifier.weight"), 0u);
  EXPECT_EQ(model.classifier, nullptr);
  EXPECT_EQ(summarize(model, "efficientnet_b0", 64, 64).rows.back().output, (Shape{8}));

  model.to(kFloat64);
  model.eval();
  autograd::NoGradGuard no_grad;
  const Tensor images = randn({2, 3, 64, 64}, kFloat64);
  expect_products(model.forward_heads(images), model.forward(images), 1e-12);

  EfficientNetOptions ten = multi_head_b0();
  ten.num_classes = 10;
  EXPECT_NE(test::error_of([&] { EfficientNet bad(ten); }).find("18 mask classes"), std::string::npos);
  EfficientNetOptions single = efficientnet_options("efficientnet_b0");
  single.num_classes = 18;
  EfficientNet one_head(single);
  EXPECT_NE(test::error_of([&] { one_head.forward_heads(images); }).find("single classifier"), std::string::npos);
}

TEST(MultiHead, ConfigNeedsTheMaskClasses) {
  train::TrainConfig c;
  c.data_root = "x";
  c.head = "multi";
  EXPECT_EQ(test::error_of([&] { train::validate(c); }), "(no error)");
  EXPECT_EQ(train::model_options(c).head, ClassifierHead::Multi);
  c.data_format = "folder";
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("model.head = multi"), std::string::npos);
  c.data_format = "mask";
  c.num_classes = 8;
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("model.num_classes = 18"), std::string::npos);
  c.num_classes = 18;
  c.head = "triple";
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("single, multi"), std::string::npos);
  c.head = "multi";
  c.head_weights = "1,1";
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("train.head_weights"), std::string::npos);
}

class TrainMultiHead : public testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = test::write_tiny_demo("train_multi_head_data").release(); }
  static void TearDownTestSuite() { delete data_; }

  train::TrainConfig tiny(const std::string& out) const {
    train::TrainConfig c = test::tiny_config(data_->path(), out);
    c.label_smoothing = 0.1;
    c.head = "multi";
    c.head_weights = "1,0.5,1";
    return c;
  }

  static test::TempDir* data_;
};
test::TempDir* TrainMultiHead::data_ = nullptr;

TEST_F(TrainMultiHead, TrainsEndToEndAndWritesProductProbabilities) {
  test::TempDir runs("train_multi_head_runs");
  const std::string dir = runs / "run";
  ASSERT_EQ(train::run_training(tiny(dir), {}), 0);
  EXPECT_EQ(lines_of(dir + "/metrics.csv").size(), 3u);
  for (const char* file : {"val_probs.csv", "test_probs.csv", "submission.csv"}) {
    const std::vector<std::string> rows = lines_of(dir + "/" + file);
    ASSERT_GT(rows.size(), 1u) << file;
    if (std::string(file) == "submission.csv") continue;
    for (size_t r = 1; r < rows.size(); ++r) {
      std::stringstream fields(rows[r]);
      std::string field;
      double total = 0;
      for (int column = 0; std::getline(fields, field, ','); ++column)
        if (column >= 2) total += std::stod(field);
      EXPECT_NEAR(total, 1.0, 1e-5) << file << " row " << r;
    }
  }
  // The saved weights are the three heads' (a strict load into the model of the saved config), and the
  // trained model's probabilities are the products of its heads'.
  train::TrainConfig saved;
  train::load_toml(dir + "/config.toml", saved);
  EXPECT_EQ(saved.head, "multi");
  EXPECT_EQ(saved.head_weights, "1,0.5,1");
  EfficientNet model(train::model_options(saved));
  load_weights(model, dir + "/best.safetensors");
  model.eval();
  autograd::NoGradGuard no_grad;
  const Tensor images = randn({3, 3, 32, 24});
  expect_products(model.forward_heads(images), model.forward(images), 1e-5);
}

TEST_F(TrainMultiHead, StartsFromSingleHeadWeightsWithFreshHeads) {
  test::TempDir runs("train_multi_head_init");
  EfficientNetOptions single = efficientnet_options("efficientnet_b0");
  single.num_classes = 1000;  // as timm's ImageNet weights
  save_weights(EfficientNet(single), runs / "imagenet.safetensors");
  train::TrainConfig c = tiny(runs / "run");
  c.epochs = 1;
  c.predict = false;
  c.init_weights = runs / "imagenet.safetensors";
  EXPECT_EQ(train::run_training(c, {}), 0);

  // A file that differs elsewhere is still an error.
  safetensors::NamedTensors partial;
  for (const auto& [name, t] : EfficientNet(single).state_dict())
    if (name != "conv_stem.weight") partial.emplace_back(name, t);
  safetensors::save(runs / "partial.safetensors", partial);
  c.init_weights = runs / "partial.safetensors";
  c.out = runs / "run2";
  const std::string error = test::error_of([&] { train::run_training(c, {}); });
  EXPECT_NE(error.find("conv_stem.weight"), std::string::npos) << error;
}

}  // namespace
}  // namespace effnet
