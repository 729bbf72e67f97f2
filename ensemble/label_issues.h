// Finding mislabelled training images from out-of-fold probabilities by confident learning (Northcutt,
// Jiang and Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021):
//
//   threshold  t_j = the mean of p_j over the images labelled j (a class never given has none: never
//              suggested)
//   suspect    an image labelled y is suspect when some class k != y reaches its threshold (p_k >= t_k)
//              and outranks the label (p_k > p_y); its suggestion is the most probable such k and its
//              margin p_k - p_y (ranked by margin, largest first)
//
// In the competition what is mislabelled is a person's gender or age (all seven photos at once) or a
// person's incorrect_mask and normal photos swapped. So the person issues apply the same rule to each
// factor of the 18 classes (class = mask * 6 + gender * 3 + age band): its marginal probabilities (summed
// over the other factors), its own thresholds, its own suspects; then aggregate per person (the folder
// that holds the image; ids are the image paths, as in oof_probs.csv):
//   gender, age  a photo suspect on the factor is a vote for its suggested value; the person is flagged
//                when the votes reach `min_vote_fraction` of the person's photos, with the most voted value
//                (ties: the larger summed margin) and score = the mean margin of the votes
//   mask-swap    the incorrect_mask photo is more probably "not worn" than "incorrect" and the normal photo
//                the other way round, one of them at least a confident suspect on the mask factor (the swap
//                touches two photos only, too few to vote); score = the mean of the two margins
// (On the 18 joint classes a photo's wrong gender competes with its uncertain age band for the suggestion
// and too few photos vote; per factor, each field is judged on its own evidence.)
// The person issues are written as the relabel file of data/dataset.h (path,field,value), so that a reviewed
// copy is given to `--relabel`, with the columns given (the current label), suggested, votes, images and
// score for the review. A suggested age is the middle of the suggested band: 24, (30 + T - 1) / 2 or T + 5
// for the age threshold T; the band is what training sees.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ensemble/probability_file.h"

namespace effnet::ensemble {

// t_j for each class; +infinity for a class no image is labelled with.
std::vector<double> class_thresholds(const ProbabilityTable& oof);

struct ImageIssue {
  int64_t row = 0;  // in the table
  std::string id;
  int64_t label = 0, suggested = 0;
  double margin = 0;  // p_suggested - p_label
};
// Every suspect image, largest margin first. The table must be labelled (no -1): an Error otherwise.
std::vector<ImageIssue> find_image_issues(const ProbabilityTable& oof);

struct PersonIssue {
  std::string person;  // the folder name, train.csv's path
  std::string field;   // gender, age or mask-swap
  std::string value;   // for the relabel file: male | female, an age, or empty (mask-swap)
  std::string given, suggested;  // readable: "male" -> "female", "30-59" -> "60+", "incorrect,normal" -> ...
  int64_t votes = 0, images = 0;
  double score = 0;
};
struct LabelIssueOptions {
  int64_t age_threshold = 60;
  double min_vote_fraction = 0.5;
};
// Needs the 18 competition classes and ids .../<person>/<mask1..5|incorrect_mask|normal>.<ext>; an Error
// naming the file and the first id that is not. Highest score first.
std::vector<PersonIssue> find_person_issues(const ProbabilityTable& oof, const LabelIssueOptions& options);

void write_person_issues_csv(const std::string& path, const std::vector<PersonIssue>& issues);
// id,label,suggested,margin
void write_image_issues_csv(const std::string& path, const std::vector<ImageIssue>& issues);

}  // namespace effnet::ensemble
