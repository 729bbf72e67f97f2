// Where the images are and what they show.
//
// The competition layout (../shared/recipe.md):
//   ROOT/train/train.csv            id,gender,race,age,path  (one row per person)
//   ROOT/train/images/<path>/       mask1..mask5, incorrect_mask, normal  (.jpg, .jpeg or .png, mixed)
//   ROOT/eval/info.csv              ImageID,ans               (the prediction set, in submission order)
//   ROOT/eval/images/<ImageID>
// class = mask * 6 + gender * 3 + age_band: mask worn 0 (mask1..5), incorrect 1, not worn 2; male 0,
// female 1; age band 0 (< 30), 1 (30 .. T-1), 2 (>= T), T = the age threshold (60; the recipe uses 58).
// Dot-files and dot-folders (._mask1.jpg, ._images) are ignored. People are keyed by `path` (ids repeat).
// A person whose folder is missing or lacks one of the seven images is reported and skipped; a malformed
// CSV row is an Error naming the file, the line and the problem.
//
// A relabel file fixes known mislabelled people on load (CSV with a header `path,field,value`):
//   field gender (male | female), age (an integer), or mask-swap (value ignored: swaps the
//   incorrect_mask and normal images of that person).
//
// Class folders: ROOT/<class>/*.{jpg,jpeg,png} like torchvision's ImageFolder, classes sorted by name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace effnet::data {

struct Sample {
  std::string path;    // the image file
  int64_t label = -1;  // class index; -1 for unlabelled images (the prediction set)
  std::string group;   // samples of one group (a person) are never split apart
  int64_t stratum = 0; // what splits stratify on (competition: gender * 3 + age band)
};

struct Dataset {
  std::vector<Sample> samples;
  std::vector<std::string> class_names;
  std::vector<std::string> problems;  // "path: reason" for each person or file skipped on load
};

constexpr int64_t kMaskClasses = 18;
int64_t age_band(int64_t age, int64_t threshold);
int64_t mask_class(int64_t mask, int64_t gender, int64_t band);

struct MaskOptions {
  int64_t age_threshold = 60;
  std::string relabel_file;  // empty: none
};

Dataset load_mask_train(const std::string& root, const MaskOptions& options = {});
// The prediction set in info.csv order; image_ids receives the ImageID column (for the submission).
Dataset load_mask_eval(const std::string& root, std::vector<std::string>* image_ids = nullptr);
Dataset load_image_folder(const std::string& root);

}  // namespace effnet::data
