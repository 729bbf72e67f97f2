#include "ensemble/label_issues.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>

#include "data/dataset.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace effnet::ensemble {
namespace {

constexpr std::array<const char*, 3> kMaskNames = {"worn", "incorrect", "normal"};
constexpr std::array<const char*, 2> kGenderNames = {"male", "female"};

int64_t mask_of(int64_t c) { return c / 6; }
int64_t gender_of(int64_t c) { return c / 3 % 2; }
int64_t band_of(int64_t c) { return c % 3; }

std::string band_name(int64_t band, int64_t threshold) {
  if (band == 0) return "0-29";
  if (band == 1) return "30-" + std::to_string(threshold - 1);
  return std::to_string(threshold) + "+";
}

int64_t band_age(int64_t band, int64_t threshold) {
  if (band == 0) return 24;
  if (band == 1) return (30 + threshold - 1) / 2;
  return threshold + 5;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", v);
  return text;
}

// The table of one factor of the 18 classes (mask 3, gender 2 or age band 3): the marginal probabilities
// sum over the other factors, the labels are the label's factor.
ProbabilityTable factor_table(const ProbabilityTable& oof, int64_t classes, int64_t (*of)(int64_t)) {
  const std::vector<double> p = oof.probabilities.to_vector();
  std::vector<double> marginal(static_cast<size_t>(oof.rows() * classes), 0.0);
  ProbabilityTable table;
  table.name = oof.name;
  table.ids = oof.ids;
  for (int64_t i = 0; i < oof.rows(); ++i) {
    for (int64_t c = 0; c < 18; ++c) marginal[i * classes + of(c)] += p[i * 18 + c];
    table.labels.push_back(oof.labels[i] < 0 ? -1 : of(oof.labels[i]));
  }
  table.probabilities = from_vector(marginal, {oof.rows(), classes}, kFloat64);
  return table;
}

// The rows of one person, by photo.
struct Person {
  std::vector<int64_t> rows;
  int64_t incorrect_row = -1, normal_row = -1;
};

// Votes of a person's suspect images for one field's values.
struct FieldVotes {
  std::map<int64_t, int64_t> votes;     // value -> images
  std::map<int64_t, double> margins;    // value -> summed margin
  int64_t given = -1;                   // the given value (of the person's first image)
};

}  // namespace

std::vector<double> class_thresholds(const ProbabilityTable& oof) {
  const int64_t classes = oof.classes();
  const std::vector<double> p = oof.probabilities.to_vector();
  std::vector<double> sum(classes, 0.0);
  std::vector<int64_t> count(classes, 0);
  for (int64_t i = 0; i < oof.rows(); ++i) {
    const int64_t y = oof.labels[i];
    EFFNET_CHECK(y >= 0, oof.name, ": image '", oof.ids[i], "' has no label (-1); label issues need oof_probs.csv");
    sum[y] += p[i * classes + y];
    ++count[y];
  }
  std::vector<double> t(classes);
  for (int64_t j = 0; j < classes; ++j) {
    t[j] = count[j] > 0 ? sum[j] / static_cast<double>(count[j]) : std::numeric_limits<double>::infinity();
  }
  return t;
}

std::vector<ImageIssue> find_image_issues(const ProbabilityTable& oof) {
  const std::vector<double> t = class_thresholds(oof);
  const int64_t classes = oof.classes();
  const std::vector<double> p = oof.probabilities.to_vector();
  std::vector<ImageIssue> issues;
  for (int64_t i = 0; i < oof.rows(); ++i) {
    const double* row = p.data() + i * classes;
    const int64_t y = oof.labels[i];
    int64_t best = -1;
    for (int64_t k = 0; k < classes; ++k) {
      if (k != y && row[k] >= t[k] && row[k] > row[y] && (best < 0 || row[k] > row[best])) best = k;
    }
    if (best >= 0) issues.push_back({i, oof.ids[i], y, best, row[best] - row[y]});
  }
  std::stable_sort(issues.begin(), issues.end(),
                   [](const ImageIssue& a, const ImageIssue& b) { return a.margin > b.margin; });
  return issues;
}

std::vector<PersonIssue> find_person_issues(const ProbabilityTable& oof, const LabelIssueOptions& options) {
  namespace fs = std::filesystem;
  EFFNET_CHECK(oof.classes() == data::kMaskClasses, oof.name, ": ", oof.classes(),
               " classes; label issues per person need the 18 competition classes");
  EFFNET_CHECK(options.min_vote_fraction > 0 && options.min_vote_fraction <= 1,
               "label issues: the vote fraction must be in (0, 1], got ", options.min_vote_fraction);
  data::age_band(0, options.age_threshold);  // validates the threshold
  std::map<std::string, Person> people;
  std::vector<std::string> order;  // people in table order
  for (int64_t i = 0; i < oof.rows(); ++i) {
    const fs::path path(oof.ids[i]);
    const std::string stem = path.stem().string(), person = path.parent_path().filename().string();
    const bool known = stem == "incorrect_mask" || stem == "normal" ||
                       (stem.size() == 5 && stem.rfind("mask", 0) == 0 && stem[4] >= '1' && stem[4] <= '5');
    EFFNET_CHECK(known && !person.empty(), oof.name, ": id '", oof.ids[i],
                 "' is not a competition photo .../<person>/<mask1..5|incorrect_mask|normal>.<ext>");
    auto [it, inserted] = people.try_emplace(person);
    if (inserted) order.push_back(person);
    it->second.rows.push_back(i);
    if (stem == "incorrect_mask") it->second.incorrect_row = i;
    if (stem == "normal") it->second.normal_row = i;
  }
  // Confident learning on each factor: row -> that factor's image issue.
  const auto suspects_in = [](const ProbabilityTable& factor) {
    std::map<int64_t, ImageIssue> suspects;
    for (const ImageIssue& issue : find_image_issues(factor)) suspects[issue.row] = issue;
    return suspects;
  };
  const ProbabilityTable mask = factor_table(oof, 3, mask_of);
  const std::vector<double> mask_p = mask.probabilities.to_vector();
  const std::map<int64_t, ImageIssue> mask_suspects = suspects_in(mask),
                                      gender_suspects = suspects_in(factor_table(oof, 2, gender_of)),
                                      age_suspects = suspects_in(factor_table(oof, 3, band_of));

  const int64_t threshold = options.age_threshold;
  std::vector<PersonIssue> issues;
  for (const std::string& name : order) {
    const Person& person = people[name];
    const int64_t n = static_cast<int64_t>(person.rows.size());
    FieldVotes gender, age;
    gender.given = gender_of(oof.labels[person.rows[0]]);
    age.given = band_of(oof.labels[person.rows[0]]);
    for (auto [votes, suspects] : {std::pair{&gender, &gender_suspects}, std::pair{&age, &age_suspects}}) {
      for (int64_t row : person.rows) {
        const auto found = suspects->find(row);
        if (found == suspects->end()) continue;
        ++votes->votes[found->second.suggested];
        votes->margins[found->second.suggested] += found->second.margin;
      }
    }
    const auto flag = [&](const FieldVotes& field, const char* field_name) {
      int64_t total = 0, best = -1;
      for (const auto& [value, count] : field.votes) {
        total += count;
        if (best < 0 || count > field.votes.at(best) ||
            (count == field.votes.at(best) && field.margins.at(value) > field.margins.at(best))) {
          best = value;
        }
      }
      if (total == 0 || static_cast<double>(total) < options.min_vote_fraction * static_cast<double>(n)) return;
      double margin = 0;
      for (const auto& [value, sum] : field.margins) margin += sum;
      PersonIssue issue{name, field_name, "", "", "", total, n, margin / static_cast<double>(total)};
      if (field_name == std::string("gender")) {
        issue.value = issue.suggested = kGenderNames[best];
        issue.given = kGenderNames[field.given];
      } else {
        issue.value = std::to_string(band_age(best, threshold));
        issue.given = band_name(field.given, threshold);
        issue.suggested = band_name(best, threshold);
      }
      issues.push_back(issue);
    };
    flag(gender, "gender");
    flag(age, "age");
    // The margin of the other one of incorrect / not worn over the given one on a photo (NaN: not there, or
    // labelled "worn"), and whether the photo is a confident suspect for it.
    const auto swap_margin = [&](int64_t row) {
      const int64_t given = row < 0 ? 0 : mask.labels[row];
      if (given == 0) return std::numeric_limits<double>::quiet_NaN();
      return mask_p[row * 3 + 3 - given] - mask_p[row * 3 + given];
    };
    const auto confident = [&](int64_t row) {
      const auto found = row < 0 ? mask_suspects.end() : mask_suspects.find(row);
      return found != mask_suspects.end() && found->second.suggested == 3 - mask.labels[row];
    };
    const double incorrect = swap_margin(person.incorrect_row), normal = swap_margin(person.normal_row);
    if (incorrect > 0 && normal > 0 && (confident(person.incorrect_row) || confident(person.normal_row))) {
      issues.push_back({name, "mask-swap", "", "incorrect,normal", "normal,incorrect", 2, n, (incorrect + normal) / 2});
    }
  }
  std::stable_sort(issues.begin(), issues.end(),
                   [](const PersonIssue& a, const PersonIssue& b) { return a.score > b.score; });
  return issues;
}

void write_person_issues_csv(const std::string& path, const std::vector<PersonIssue>& issues) {
  std::vector<std::vector<std::string>> rows;
  for (const PersonIssue& i : issues) {
    rows.push_back({i.person, i.field, i.value, i.given, i.suggested, std::to_string(i.votes),
                    std::to_string(i.images), number(i.score)});
  }
  data::write_csv(path, {"path", "field", "value", "given", "suggested", "votes", "images", "score"}, rows);
}

void write_image_issues_csv(const std::string& path, const std::vector<ImageIssue>& issues) {
  std::vector<std::vector<std::string>> rows;
  for (const ImageIssue& i : issues) {
    rows.push_back({i.id, std::to_string(i.label), std::to_string(i.suggested), number(i.margin)});
  }
  data::write_csv(path, {"id", "label", "suggested", "margin"}, rows);
}

}  // namespace effnet::ensemble
