// Confident learning (ensemble/label_issues.h): thresholds and suspects by hand, the per-person
// aggregation, and recovery of planted label errors on demo data with simulated out-of-fold probabilities
// (its precision and recall are printed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "data/dataset.h"
#include "data/demo_data.h"
#include "ensemble/label_issues.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"
#include "train/inference.h"

namespace effnet::ensemble {
namespace {

ProbabilityTable table(const std::vector<std::string>& ids, const std::vector<int64_t>& labels,
                       const std::vector<double>& p, int64_t classes) {
  ProbabilityTable t;
  t.name = "oof_probs.csv";
  t.ids = ids;
  t.labels = labels;
  t.probabilities = from_vector(p, {static_cast<int64_t>(ids.size()), classes}, kFloat64);
  return t;
}

TEST(LabelIssues, ThresholdsAreTheMeanProbabilityOfEachGivenClass) {
  const ProbabilityTable oof = table({"r0", "r1", "r2", "r3", "r4", "r5"}, {0, 0, 1, 1, 2, 2},
                                     {0.8, 0.1, 0.1,     // fine
                                      0.2, 0.7, 0.1,     // class 1 reaches t1 = 0.525 and outranks 0.2: suspect
                                      0.1, 0.7, 0.2,     // fine
                                      0.45, 0.35, 0.2,   // class 0 outranks the label but misses t0 = 0.5
                                      0.05, 0.15, 0.8,   // fine
                                      0.6, 0.1, 0.3},    // class 0 reaches t0 and outranks 0.3: suspect
                                     3);
  const std::vector<double> t = class_thresholds(oof);
  EXPECT_NEAR(t[0], 0.5, 1e-15);
  EXPECT_NEAR(t[1], 0.525, 1e-15);
  EXPECT_NEAR(t[2], 0.55, 1e-15);
  const std::vector<ImageIssue> issues = find_image_issues(oof);
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].id, "r1");  // the larger margin first
  EXPECT_EQ(issues[0].suggested, 1);
  EXPECT_NEAR(issues[0].margin, 0.5, 1e-12);
  EXPECT_EQ(issues[1].id, "r5");
  EXPECT_EQ(issues[1].suggested, 0);
  EXPECT_NEAR(issues[1].margin, 0.3, 1e-12);
  // A class nobody is labelled with has no threshold and is never suggested.
  const ProbabilityTable unused = table({"a", "b"}, {0, 0}, {0.1, 0.9, 0.2, 0.8}, 2);
  EXPECT_TRUE(std::isinf(class_thresholds(unused)[1]));
  EXPECT_TRUE(find_image_issues(unused).empty());
  EXPECT_NE(test::error_of([] { find_image_issues(table({"a"}, {-1}, {0.5, 0.5}, 2)); }).find("has no label"),
            std::string::npos);
}

// A competition person's seven photos, each with probability `top` on the class it shows (the photo's mask,
// the gender, the band) and the rest spread evenly.
struct PersonRows {
  std::vector<std::string> ids;
  std::vector<int64_t> labels;
  std::vector<double> p;
  void add(const std::string& person, int64_t gender, int64_t band, int64_t said_gender, int64_t said_band,
           bool swapped = false, double top = 0.9) {
    const char* stems[7] = {"mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"};
    for (int k = 0; k < 7; ++k) {
      const int64_t mask = k < 5 ? 0 : k - 4;
      const int64_t shown = swapped && mask > 0 ? 3 - mask : mask;
      ids.push_back("root/train/images/" + person + "/" + stems[k] + ".jpg");
      labels.push_back(data::mask_class(mask, said_gender, said_band));
      for (int64_t c = 0; c < 18; ++c) p.push_back(c == data::mask_class(shown, gender, band) ? top : (1 - top) / 17);
    }
  }
};

TEST(LabelIssues, PeopleAreFlaggedByTheVotesOfTheirPhotos) {
  PersonRows rows;
  rows.add("clean_male", 0, 0, 0, 0);
  rows.add("clean_female", 1, 0, 1, 0);
  // The mislabelled, predicted more surely than the average of their true class (its threshold):
  rows.add("said_male", 1, 0, 0, 0, false, 0.95);   // a woman labelled male
  rows.add("said_young", 1, 2, 1, 0, false, 0.95);  // a woman of 58+ labelled under 30
  rows.add("swapped", 0, 1, 0, 1, true, 0.95);      // incorrect_mask and normal photos swapped
  rows.add("clean_old", 1, 2, 1, 2);
  const ProbabilityTable oof = table(rows.ids, rows.labels, rows.p, 18);
  const std::vector<PersonIssue> issues = find_person_issues(oof, {58, 0.5});
  std::map<std::pair<std::string, std::string>, PersonIssue> found;
  for (const PersonIssue& i : issues) found[{i.person, i.field}] = i;
  ASSERT_EQ(found.size(), 3u);
  const PersonIssue& gender = found.at({"said_male", "gender"});
  EXPECT_EQ(gender.value, "female");
  EXPECT_EQ(gender.given, "male");
  EXPECT_EQ(gender.votes, 7);
  EXPECT_EQ(gender.images, 7);
  EXPECT_NEAR(gender.score, 0.95 - 0.05 / 17, 1e-12);
  const PersonIssue& age = found.at({"said_young", "age"});
  EXPECT_EQ(age.value, "63");  // the middle of "58+" under threshold 58: 58 + 5
  EXPECT_EQ(age.given, "0-29");
  EXPECT_EQ(age.suggested, "58+");
  const PersonIssue& swap = found.at({"swapped", "mask-swap"});
  EXPECT_EQ(swap.value, "");
  EXPECT_EQ(swap.votes, 2);
  // Not per person without the competition's file names.
  const ProbabilityTable flat = table({"a.jpg"}, {0}, std::vector<double>(18, 1.0 / 18), 18);
  EXPECT_NE(test::error_of([&] { find_person_issues(flat, {}); }).find("'a.jpg' is not a competition photo"),
            std::string::npos);
}

// Demo data with label errors planted on top of the demo's own four (relabel.csv): out-of-fold
// probabilities are simulated from the true labels (a classifier of about 70 % top-1 accuracy whose mistakes
// on a person's gender and age are correlated across the person's photos, as a real model's are), given
// with the planted labels, and the finder must name the planted people.
TEST(LabelIssues, RecoversLabelErrorsPlantedInDemoData) {
  test::TempDir dir("label_issues_planted");
  data::DemoOptions demo;
  demo.people = 150;
  demo.height = 40;
  demo.width = 32;
  demo.eval_images = 0;
  data::write_demo_dataset(dir.path(), demo);
  const std::string train_csv = dir / "train/train.csv";
  const data::Dataset truth = data::load_mask_train(dir.path(), {60, dir / "train/relabel.csv"});

  // Plant: every 9th person's gender flipped, every 9th (offset 4) moved to another age band.
  data::CsvTable csv = data::read_csv(train_csv);
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    std::string& gender = csv.rows[r][csv.column("gender")];
    std::string& age = csv.rows[r][csv.column("age")];
    if (r % 9 == 0) gender = gender == "male" ? "female" : "male";
    if (r % 9 == 4) age = std::stoll(age) < 30 ? "45" : std::stoll(age) < 60 ? "70" : "22";
  }
  data::write_csv(train_csv, csv.header, csv.rows);
  const data::Dataset given = data::load_mask_train(dir.path());
  ASSERT_EQ(given.samples.size(), truth.samples.size());

  // The planted errors, from the labels themselves: (person, field) where the given class differs.
  std::set<std::pair<std::string, std::string>> planted;
  for (size_t i = 0; i < truth.samples.size(); ++i) {
    const int64_t t = truth.samples[i].label, g = given.samples[i].label;
    const std::string person = std::filesystem::path(truth.samples[i].path).parent_path().filename().string();
    if (t / 3 % 2 != g / 3 % 2) planted.insert({person, "gender"});
    if (t % 3 != g % 3) planted.insert({person, "age"});
    if (t / 6 != g / 6) planted.insert({person, "mask-swap"});
  }
  ASSERT_GE(planted.size(), 30u);

  // Simulated probabilities: per factor, logits = boost on the true value + a per-person offset + noise.
  manual_seed(11);
  const int64_t n = static_cast<int64_t>(truth.samples.size());
  const std::vector<double> noise = randn({n, 8}).to_vector();
  const std::vector<double> person_noise = randn({n / 7 + 1, 5}).to_vector();
  std::vector<double> p;
  std::vector<std::string> ids;
  std::vector<int64_t> labels;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = truth.samples[i].label, person = i / 7;
    double mask[3], gender[2], age[3];
    for (int v = 0; v < 3; ++v) mask[v] = 4.0 * (v == t / 6) + noise[i * 8 + v];
    for (int v = 0; v < 2; ++v) gender[v] = 2.5 * (v == t / 3 % 2) + 0.6 * person_noise[person * 5 + v] + noise[i * 8 + 3 + v];
    for (int v = 0; v < 3; ++v) age[v] = 2.5 * (v == t % 3) + 0.6 * person_noise[person * 5 + 2 + v] + noise[i * 8 + 5 + v];
    const auto normalise = [](double* z, int k) {
      double total = 0;
      for (int v = 0; v < k; ++v) total += (z[v] = std::exp(z[v]));
      for (int v = 0; v < k; ++v) z[v] /= total;
    };
    normalise(mask, 3);
    normalise(gender, 2);
    normalise(age, 3);
    int64_t best = 0;
    for (int64_t c = 0; c < 18; ++c) {
      p.push_back(mask[c / 6] * gender[c / 3 % 2] * age[c % 3]);
      if (p.back() > p[i * 18 + best]) best = c;
    }
    correct += best == t;
    ids.push_back(given.samples[i].path);
    labels.push_back(given.samples[i].label);
  }
  write_probabilities_csv(dir / "oof_probs.csv", ids, labels, from_vector(p, {n, 18}, kFloat64));

  train::LabelIssueRequest request;
  request.oof_probs = dir / "oof_probs.csv";
  const std::vector<PersonIssue> issues = train::run_find_label_issues(request);
  int64_t hits = 0;
  for (const PersonIssue& issue : issues) hits += planted.count({issue.person, issue.field});
  const double precision = issues.empty() ? 0 : static_cast<double>(hits) / static_cast<double>(issues.size());
  const double recall = static_cast<double>(hits) / static_cast<double>(planted.size());
  std::printf("planted label errors: %zu; flagged %zu, of which %lld planted: precision %.2f, recall %.2f "
              "(simulated classifier top-1 accuracy %.2f)\n",
              planted.size(), issues.size(), static_cast<long long>(hits), precision, recall,
              static_cast<double>(correct) / static_cast<double>(n));
  for (const auto& [person, field] : planted) {
    bool found = false;
    for (const PersonIssue& issue : issues) found = found || (issue.person == person && issue.field == field);
    if (!found) std::printf("missed %s %s\n", person.c_str(), field.c_str());
  }
  EXPECT_GE(recall, 0.85);
  EXPECT_GE(precision, 0.85);

  // The file is a relabel file: loaded with it, the flagged planted people get their true labels back.
  const data::Dataset fixed = data::load_mask_train(dir.path(), {60, dir / "label_issues.csv"});
  int64_t restored = 0, still_wrong = 0;
  for (size_t i = 0; i < truth.samples.size(); ++i) {
    restored += given.samples[i].label != truth.samples[i].label && fixed.samples[i].label == truth.samples[i].label;
    still_wrong += fixed.samples[i].label != truth.samples[i].label;
  }
  std::printf("relabelled with label_issues.csv: %lld images restored, %lld still wrong\n",
              static_cast<long long>(restored), static_cast<long long>(still_wrong));
  EXPECT_GT(restored, 0);
}

}  // namespace
}  // namespace effnet::ensemble
