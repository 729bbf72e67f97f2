// ConfusionMatrix and its metrics against scikit-learn (tests/fixtures/loss_fixtures.safetensors, written by
// tools/reference/loss_fixtures.py): accuracy_score, precision_recall_fscore_support and
// f1_score(average='macro', labels=range(18), zero_division=0) and confusion_matrix on 300 seeded samples
// where class 3 is predicted but never a label, class 5 a label but never predicted, class 17 neither.
// The ratios agree to 1e-12 relative (both sides divide the same integers in float64).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "losses/metrics.h"
#include "tensor/ops.h"
#include "tests/test_util.h"

namespace effnet::test {
namespace {

constexpr int64_t kClasses = 18;

Tensor fixture(const std::string& name) {
  static const safetensors::File file =
      safetensors::load(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/loss_fixtures.safetensors");
  const Tensor t = file.find(name);
  EFFNET_CHECK(t.defined(), "loss_fixtures.safetensors has no tensor ", name,
               " (rerun tools/reference/loss_fixtures.py)");
  return t;
}

std::vector<int64_t> int_vector(const Tensor& t) {
  const std::vector<double> v = t.to_vector();
  return std::vector<int64_t>(v.begin(), v.end());
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t c = 0; c < got.size(); ++c)
    EXPECT_NEAR(got[c], want[c], 1e-12 * std::abs(want[c])) << what << " class " << c;
}

void expect_matches_scikit_learn(const ConfusionMatrix& m) {
  const std::vector<int64_t> confusion = int_vector(fixture("metrics.confusion"));
  for (int64_t a = 0; a < kClasses; ++a) {
    for (int64_t b = 0; b < kClasses; ++b) {
      EXPECT_EQ(m.count(a, b), confusion[static_cast<size_t>(a * kClasses + b)])
          << "label " << a << ", pred " << b;
    }
  }
  const std::vector<int64_t> support = int_vector(fixture("metrics.support"));
  for (int64_t c = 0; c < kClasses; ++c)
    EXPECT_EQ(m.support(c), support[static_cast<size_t>(c)]) << "class " << c;
  EXPECT_NEAR(m.accuracy(), fixture("metrics.accuracy").item(), 1e-12);
  EXPECT_NEAR(m.macro_f1(), fixture("metrics.macro_f1").item(), 1e-12);
  expect_near_all(m.precision(), fixture("metrics.precision").to_vector(), "precision");
  expect_near_all(m.recall(), fixture("metrics.recall").to_vector(), "recall");
  expect_near_all(m.f1(), fixture("metrics.f1").to_vector(), "f1");
}

TEST(Metrics, MatchScikitLearnWithAbsentClasses) {
  ConfusionMatrix m(kClasses);
  m.add(fixture("metrics.predictions"), fixture("metrics.labels"));
  EXPECT_EQ(m.total(), 300);
  expect_matches_scikit_learn(m);
  // The fixture's absent classes score 0, as the competition's macro-F1 counts them.
  EXPECT_EQ(m.precision()[5], 0.0);
  EXPECT_EQ(m.recall()[3], 0.0);
  EXPECT_EQ(m.f1()[17], 0.0);
}

TEST(Metrics, AccumulatesBatchByBatch) {
  const std::vector<int64_t> predictions = int_vector(fixture("metrics.predictions"));
  const std::vector<int64_t> labels = int_vector(fixture("metrics.labels"));
  ConfusionMatrix m(kClasses);
  for (size_t start = 0; start < labels.size(); start += 32) {
    const size_t end = std::min(labels.size(), start + 32);
    m.add(std::vector<int64_t>(predictions.begin() + start, predictions.begin() + end),
          std::vector<int64_t>(labels.begin() + start, labels.begin() + end));
  }
  expect_matches_scikit_learn(m);
  m.reset();
  EXPECT_EQ(m.total(), 0);
  EXPECT_EQ(m.accuracy(), 0.0);
  EXPECT_EQ(m.macro_f1(), 0.0);
}

TEST(MetricsCuda, AddsTensorsFromTheGpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  ConfusionMatrix m(kClasses);
  m.add(fixture("metrics.predictions").cuda(), fixture("metrics.labels").cuda());
  expect_matches_scikit_learn(m);
}

TEST(Metrics, HandComputedSmallCase) {
  // labels 0 0 1 2, predictions 0 1 1 1: class 0 P 1 R 1/2 F1 2/3; class 1 P 1/3 R 1 F1 1/2; class 2 all 0.
  ConfusionMatrix m(3);
  m.add(std::vector<int64_t>{0, 1, 1, 1}, std::vector<int64_t>{0, 0, 1, 2});
  EXPECT_DOUBLE_EQ(m.accuracy(), 0.5);
  EXPECT_EQ(m.precision(), (std::vector<double>{1.0, 1.0 / 3.0, 0.0}));
  EXPECT_EQ(m.recall(), (std::vector<double>{0.5, 1.0, 0.0}));
  EXPECT_DOUBLE_EQ(m.macro_f1(), (2.0 / 3.0 + 0.5) / 3.0);
}

TEST(Metrics, PrintsReportAndMatrix) {
  ConfusionMatrix m(3);
  m.add(std::vector<int64_t>{0, 1, 1, 1}, std::vector<int64_t>{0, 0, 1, 2});
  const std::string report = m.report({"mask", "incorrect", "normal"});
  EXPECT_NE(report.find("precision"), std::string::npos) << report;
  EXPECT_NE(report.find("incorrect     0.3333     1.0000     0.5000"), std::string::npos) << report;
  EXPECT_NE(report.find("macro-F1"), std::string::npos) << report;
  EXPECT_NE(report.find("0.3889"), std::string::npos) << report;  // (2/3 + 1/2 + 0) / 3
  const std::string table = m.matrix_table();
  EXPECT_EQ(table,
            "label\\pred. 0 1 2\n"
            "0           1 1 0\n"
            "1           0 1 0\n"
            "2           0 1 0\n");
}

TEST(Metrics, RejectsBadInput) {
  ConfusionMatrix m(3);
  EXPECT_THROW(m.add(std::vector<int64_t>{0, 3}, std::vector<int64_t>{0, 1}), Error);
  EXPECT_THROW(m.add(std::vector<int64_t>{0}, std::vector<int64_t>{0, 1}), Error);
  EXPECT_THROW(m.add(from_vector({0, 1}, {2}), from_vector({0, 1}, {2}, kInt64)), Error);
  EXPECT_THROW(m.report({"only one name"}), Error);
  EXPECT_EQ(m.total(), 0);  // a rejected batch counts nothing
  try {
    m.add(std::vector<int64_t>{0, 1, 2}, std::vector<int64_t>{0, -1, 2});
    FAIL() << "did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[0, 3)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace effnet::test
