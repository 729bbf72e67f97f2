// Person-wise stratified splits: no person on both sides, every sample validated exactly once over the k
// folds, each fold's share of every stratum within one group of even, seeded determinism, ratio splits and
// the audit CSV.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "data/split.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace effnet::data {
namespace {

using test::error_of;

// People with uneven strata (17, 11, 5, 14, 9, 4 people) and 1 to 7 images each, interleaved so that a
// person's samples are not contiguous.
std::vector<Sample> make_people() {
  const std::vector<int64_t> per_stratum{17, 11, 5, 14, 9, 4};
  std::vector<std::pair<std::string, int64_t>> people;
  for (size_t s = 0; s < per_stratum.size(); ++s) {
    for (int64_t p = 0; p < per_stratum[s]; ++p) people.emplace_back(detail::concat("s", s, "p", p), s);
  }
  std::vector<Sample> samples;
  for (int64_t image = 0; image < 7; ++image) {
    for (size_t p = 0; p < people.size(); ++p) {
      if (image > static_cast<int64_t>(p % 7)) continue;
      Sample s;
      s.group = people[p].first;
      s.stratum = people[p].second;
      s.label = image;
      s.path = detail::concat(s.group, "/", image, ".jpg");
      samples.push_back(s);
    }
  }
  return samples;
}

std::set<std::string> groups_of(const std::vector<Sample>& samples, const std::vector<int64_t>& indices) {
  std::set<std::string> groups;
  for (int64_t i : indices) groups.insert(samples[static_cast<size_t>(i)].group);
  return groups;
}

// Groups per stratum among `indices`.
std::map<int64_t, int64_t> strata_of(const std::vector<Sample>& samples,
                                     const std::vector<int64_t>& indices) {
  std::map<std::string, int64_t> stratum;
  for (int64_t i : indices) {
    stratum[samples[static_cast<size_t>(i)].group] = samples[static_cast<size_t>(i)].stratum;
  }
  std::map<int64_t, int64_t> counts;
  for (const auto& [group, s] : stratum) ++counts[s];
  return counts;
}

TEST(Split, KFoldIsPersonWiseCompleteAndStratified) {
  const std::vector<Sample> samples = make_people();
  const std::map<int64_t, int64_t> all = strata_of(samples, [&] {
    std::vector<int64_t> every(samples.size());
    for (size_t i = 0; i < every.size(); ++i) every[i] = static_cast<int64_t>(i);
    return every;
  }());
  for (int64_t k : {2, 5, 7}) {
    std::vector<int> validated(samples.size(), 0);
    for (int64_t fold = 0; fold < k; ++fold) {
      const Split split = kfold_split(samples, k, fold, 42);
      EXPECT_TRUE(std::is_sorted(split.train.begin(), split.train.end()));
      EXPECT_TRUE(std::is_sorted(split.val.begin(), split.val.end()));
      EXPECT_EQ(split.train.size() + split.val.size(), samples.size());
      for (int64_t i : split.val) ++validated[static_cast<size_t>(i)];
      const std::set<std::string> train = groups_of(samples, split.train),
                                  val = groups_of(samples, split.val);
      for (const std::string& g : val) EXPECT_EQ(train.count(g), 0u) << g << " on both sides";
      EXPECT_GE(static_cast<int64_t>(val.size()), 60 / k);
      EXPECT_LE(static_cast<int64_t>(val.size()), (60 + k - 1) / k);
      const std::map<int64_t, int64_t> val_strata = strata_of(samples, split.val);
      for (const auto& [stratum, n] : all) {
        const int64_t got = val_strata.count(stratum) ? val_strata.at(stratum) : 0;
        EXPECT_GE(got, n / k) << "k " << k << " fold " << fold << " stratum " << stratum;
        EXPECT_LE(got, (n + k - 1) / k) << "k " << k << " fold " << fold << " stratum " << stratum;
      }
    }
    for (int v : validated) EXPECT_EQ(v, 1);
  }
}

TEST(Split, KFoldIsDeterministicForASeed) {
  const std::vector<Sample> samples = make_people();
  const Split a = kfold_split(samples, 5, 3, 7), b = kfold_split(samples, 5, 3, 7);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.train, b.train);
  EXPECT_NE(kfold_split(samples, 5, 3, 8).val, a.val);
  EXPECT_NE(kfold_split(samples, 5, 2, 7).val, a.val);
}

TEST(Split, GroupTakesItsMostCommonStratum) {
  // m1 and m2 are mostly stratum 1 though each starts with a stratum-0 sample: as the two groups of
  // stratum 1 they are dealt to different folds, whatever the seed.
  std::vector<Sample> samples;
  for (const auto& [group, strata] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"p1", {0, 0}}, {"p2", {0}}, {"m1", {0, 1, 1}}, {"m2", {0, 1, 1}}}) {
    for (int64_t s : strata) samples.push_back(Sample{group + ".jpg", 0, group, s});
  }
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::set<std::string> val = groups_of(samples, kfold_split(samples, 2, 0, seed).val);
    EXPECT_NE(val.count("m1"), val.count("m2")) << "seed " << seed;
    EXPECT_NE(val.count("p1"), val.count("p2")) << "seed " << seed;
  }
}

TEST(Split, KFoldArgumentErrors) {
  const std::vector<Sample> samples = make_people();
  EXPECT_EQ(error_of([&] { kfold_split(samples, 1, 0, 0); }), "kfold_split: k must be at least 2, got 1");
  EXPECT_EQ(error_of([&] { kfold_split(samples, 5, 5, 0); }),
            "kfold_split: fold 5 is out of range for k = 5 (0 .. 4)");
  EXPECT_EQ(error_of([&] { kfold_split(samples, 5, -1, 0); }),
            "kfold_split: fold -1 is out of range for k = 5 (0 .. 4)");
  EXPECT_EQ(error_of([&] { kfold_split(samples, 61, 0, 0); }),
            "kfold_split: 60 groups (people) cannot fill k = 61 folds");
  EXPECT_EQ(error_of([] { kfold_split({}, 2, 0, 0); }),
            "kfold_split: 0 groups (people) cannot fill k = 2 folds");
}

TEST(Split, RatioSplitTakesItsShareOfEachStratum) {
  const std::vector<Sample> samples = make_people();
  const std::map<int64_t, int64_t> all{{0, 17}, {1, 11}, {2, 5}, {3, 14}, {4, 9}, {5, 4}};
  for (double ratio : {0.2, 0.1, 0.5}) {
    const Split split = ratio_split(samples, ratio, 3);
    const std::set<std::string> train = groups_of(samples, split.train), val = groups_of(samples, split.val);
    EXPECT_EQ(split.train.size() + split.val.size(), samples.size());
    for (const std::string& g : val) EXPECT_EQ(train.count(g), 0u) << g;
    EXPECT_EQ(static_cast<int64_t>(val.size()), std::llround(ratio * 60)) << ratio;
    const std::map<int64_t, int64_t> val_strata = strata_of(samples, split.val);
    for (const auto& [stratum, n] : all) {
      const int64_t got = val_strata.count(stratum) ? val_strata.at(stratum) : 0;
      EXPECT_GE(got, static_cast<int64_t>(std::floor(ratio * static_cast<double>(n))))
          << ratio << " " << stratum;
      EXPECT_LE(got, static_cast<int64_t>(std::ceil(ratio * static_cast<double>(n))))
          << ratio << " " << stratum;
    }
  }
  EXPECT_EQ(ratio_split(samples, 0.2, 3).val, ratio_split(samples, 0.2, 3).val);
  EXPECT_NE(ratio_split(samples, 0.2, 4).val, ratio_split(samples, 0.2, 3).val);
  // At least one group on each side, however small the ratio.
  EXPECT_EQ(groups_of(samples, ratio_split(samples, 0.001, 0).val).size(), 1u);
  EXPECT_EQ(groups_of(samples, ratio_split(samples, 0.999, 0).train).size(), 1u);
  EXPECT_EQ(error_of([&] { ratio_split(samples, 0.0, 0); }),
            "ratio_split: val_ratio must lie in (0, 1), got 0");
  EXPECT_EQ(error_of([&] { ratio_split(samples, 1.0, 0); }),
            "ratio_split: val_ratio must lie in (0, 1), got 1");
  EXPECT_EQ(error_of([] {
              ratio_split({Sample{"a.jpg", 0, "a", 0}}, 0.5, 0);
            }),
            "ratio_split: 1 groups (people); a split needs at least 2");
}

TEST(Split, WritesTheAuditCsv) {
  test::TempDir dir("split_csv");
  const std::vector<Sample> samples = make_people();
  const Split split = kfold_split(samples, 5, 0, 1);
  const std::string path = dir / "split.csv";
  write_split_csv(path, samples, split);
  const CsvTable t = read_csv(path);
  EXPECT_EQ(t.header, (std::vector<std::string>{"path", "group", "label", "subset"}));
  ASSERT_EQ(t.rows.size(), samples.size());
  size_t val = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(t.rows[i][0], samples[i].path);
    EXPECT_EQ(t.rows[i][1], samples[i].group);
    EXPECT_EQ(t.rows[i][2], std::to_string(samples[i].label));
    const bool in_val = std::binary_search(split.val.begin(), split.val.end(), static_cast<int64_t>(i));
    EXPECT_EQ(t.rows[i][3], in_val ? "val" : "train");
    val += in_val;
  }
  EXPECT_EQ(val, split.val.size());
  const std::string twice = error_of([&] { write_split_csv(path, samples, Split{{0, 1}, {1}}); });
  EXPECT_NE(twice.find("sample 1 is listed twice"), std::string::npos) << twice;
  const std::string outside = error_of([&] { write_split_csv(path, samples, Split{{100000}, {}}); });
  EXPECT_NE(outside.find(detail::concat("index 100000 is out of range for ", samples.size(), " samples")),
            std::string::npos)
      << outside;
}

}  // namespace
}  // namespace effnet::data
