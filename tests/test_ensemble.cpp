// Probability files (validated on read, round trip), soft and hard voting by hand, and their errors.
#include <gtest/gtest.h>

#include <cmath>

#include "ensemble/probability_file.h"
#include "ensemble/voting.h"
#include "tensor/ops.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace effnet::ensemble {
namespace {

using test::error_of;

testing::AssertionResult mentions(const std::string& message, const std::string& part) {
  if (message.find(part) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "'" << message << "' does not mention '" << part << "'";
}

ProbabilityTable table(const std::string& name, const std::vector<std::string>& ids, const std::vector<double>& p,
                       int64_t classes, std::vector<int64_t> labels = {}) {
  ProbabilityTable t;
  t.name = name;
  t.ids = ids;
  t.labels = labels.empty() ? std::vector<int64_t>(ids.size(), -1) : labels;
  t.probabilities = from_vector(p, {static_cast<int64_t>(ids.size()), classes}, kFloat64);
  return t;
}

TEST(ProbabilityFile, RoundTripsIdsLabelsAndProbabilities) {
  test::TempDir dir("probability_file");
  const ProbabilityTable written = table("", {"a/x,1.jpg", "b.jpg"}, {0.25, 0.75, 0.125, 0.875}, 2, {1, -1});
  write_probabilities_csv(dir / "p.csv", written);
  const ProbabilityTable read = read_probabilities_csv(dir / "p.csv");
  EXPECT_EQ(read.name, dir / "p.csv");
  EXPECT_EQ(read.ids, written.ids);  // a comma in a path survives (the field is quoted)
  EXPECT_EQ(read.labels, written.labels);
  EXPECT_EQ(read.probabilities.to_vector(), written.probabilities.to_vector());
}

TEST(ProbabilityFile, RejectsMalformedFilesNamingTheLine) {
  test::TempDir dir("probability_file_errors");
  const auto error_for = [&](const std::string& text) {
    const std::string path = dir.write("p.csv", text);
    return error_of([&] { read_probabilities_csv(path); });
  };
  EXPECT_TRUE(mentions(error_for("id,p0,p1\na,0.5,0.5\n"), "id,label,p0,p1"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p2\na,0,0.5,0.5\n"), "column 4 is 'p2' where p1 was expected"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\n"), "no rows"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\na,0,0.5,0.5\nb,0,x,0.5\n"), "p.csv:3: column p0 is 'x'"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\na,2,0.5,0.5\n"), "p.csv:2: label 2 is not -1"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\na,0.5,0.5,0.5\n"), "label 0.5 is not -1"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\na,0,1.5,-0.5\n"), "p0 = 1.5 is not a probability"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\na,0,nan,0.5\n"), "not a probability"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\na,0,0.5,0.4\n"), "sum to 0.9, not 1"));
  EXPECT_TRUE(mentions(error_for("id,label,p0,p1\n,0,0.5,0.5\n"), "p.csv:2: empty id"));
}

TEST(ProbabilityFile, TablesToEnsembleMustHaveTheSameImagesInTheSameOrder) {
  const ProbabilityTable a = table("a.csv", {"x", "y"}, {0.5, 0.5, 0.5, 0.5}, 2, {0, 1});
  EXPECT_NO_THROW(check_same_rows(a, a));
  EXPECT_TRUE(mentions(error_of([&] { check_same_rows(a, table("b.csv", {"y", "x"}, {0.5, 0.5, 0.5, 0.5}, 2)); }),
                       "b.csv: row 1 is image 'y' where a.csv has 'x'"));
  EXPECT_TRUE(mentions(error_of([&] { check_same_rows(a, table("b.csv", {"x"}, {0.5, 0.5}, 2)); }),
                       "b.csv has 1 images but a.csv has 2"));
  EXPECT_TRUE(mentions(error_of([&] { check_same_rows(a, table("b.csv", {"x", "y"}, {1, 0, 0, 1, 0, 0}, 3)); }),
                       "b.csv has 3 classes but a.csv has 2"));
  EXPECT_TRUE(mentions(
      error_of([&] { check_same_rows(a, table("b.csv", {"x", "y"}, {0.5, 0.5, 0.5, 0.5}, 2, {0, 0})); }),
      "image 'y' is labelled 0 but a.csv labels it 1"));
}

TEST(Voting, SoftIsTheWeightedMeanProbability) {
  const ProbabilityTable a = table("a", {"x", "y"}, {0.9, 0.1, 0.2, 0.8}, 2);
  const ProbabilityTable b = table("b", {"x", "y"}, {0.3, 0.7, 0.6, 0.4}, 2, {1, 0});
  const ProbabilityTable v = vote({a, b}, {1, 3}, Vote::Soft);
  const std::vector<double> p = v.probabilities.to_vector();
  const std::vector<double> expected{(0.9 + 3 * 0.3) / 4, (0.1 + 3 * 0.7) / 4, (0.2 + 3 * 0.6) / 4, (0.8 + 3 * 0.4) / 4};
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i], expected[i], 1e-15) << i;
  EXPECT_EQ(v.ids, a.ids);
  EXPECT_EQ(v.labels, (std::vector<int64_t>{1, 0}));  // whatever table knows them
  const std::vector<double> equal = vote({a, b}, {}, Vote::Soft).probabilities.to_vector();
  EXPECT_NEAR(equal[0], 0.6, 1e-15);
}

TEST(Voting, HardIsTheWeightedVoteShareWithTiesToTheLowerClass) {
  const ProbabilityTable a = table("a", {"x", "y"}, {0.9, 0.1, 0.0, 0.4, 0.6, 0.0}, 3);
  const ProbabilityTable b = table("b", {"x", "y"}, {0.1, 0.0, 0.9, 0.2, 0.0, 0.8}, 3);
  const ProbabilityTable c = table("c", {"x", "y"}, {0.2, 0.0, 0.8, 0.0, 0.9, 0.1}, 3);
  const std::vector<double> p = vote({a, b, c}, {}, Vote::Hard).probabilities.to_vector();
  EXPECT_EQ(p, (std::vector<double>{1.0 / 3, 0, 2.0 / 3, 0, 2.0 / 3, 1.0 / 3}));
  // a and b tie (one vote each): class 0 (a's) wins over class 2, as argmax takes the first.
  const ProbabilityTable tied = vote({b, a}, {}, Vote::Hard);
  EXPECT_EQ(argmax(tied.probabilities, 1).to_vector()[0], 0);
  // Weights count as votes: 2 x c outvotes a + b.
  const std::vector<double> weighted = vote({a, b, c}, {1, 1, 2.5}, Vote::Hard).probabilities.to_vector();
  EXPECT_NEAR(weighted[4], 3.5 / 4.5, 1e-15);
}

TEST(Voting, ArgumentsAreCheckedAndNamed) {
  EXPECT_EQ(parse_model_weights("", 3, "--weights"), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(parse_model_weights("1,0.5", 2, "--weights"), (std::vector<double>{1, 0.5}));
  EXPECT_TRUE(mentions(error_of([] { parse_model_weights("1,2", 3, "--weights"); }), "--weights: 2 weights for 3"));
  EXPECT_TRUE(mentions(error_of([] { parse_model_weights("1,-1", 2, "--weights"); }), "'-1' is not a finite weight"));
  EXPECT_TRUE(mentions(error_of([] { parse_model_weights("1,x", 2, "--weights"); }), "'x' is not a finite weight"));
  EXPECT_TRUE(mentions(error_of([] { parse_model_weights("0,0", 2, "--weights"); }), "the weights are all 0"));
  EXPECT_EQ(parse_vote("hard", "--vote"), Vote::Hard);
  EXPECT_TRUE(mentions(error_of([] { parse_vote("mean", "--vote"); }), "--vote: 'mean' is not a vote"));
  const ProbabilityTable a = table("a.csv", {"x"}, {1, 0}, 2);
  EXPECT_TRUE(mentions(error_of([&] { vote({a, table("b.csv", {"z"}, {1, 0}, 2)}, {}, Vote::Soft); }),
                       "b.csv: row 1 is image 'z' where a.csv has 'x'"));
}

}  // namespace
}  // namespace effnet::ensemble
