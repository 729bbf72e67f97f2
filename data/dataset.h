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
// "mask_male_0-29", ..., "normal_female_60+" (the band names follow the threshold).
std::vector<std::string> mask_class_names(int64_t threshold);

struct MaskOptions {
  int64_t age_threshold = 60;
  std::string relabel_file;  // empty: none
};

Dataset load_mask_train(const std::string& root, const MaskOptions& options = {});
// The prediction set in info.csv order; image_ids receives the ImageID column (for the submission).
Dataset load_mask_eval(const std::string& root, std::vector<std::string>* image_ids = nullptr);
Dataset load_image_folder(const std::string& root);
// Unlabelled images to predict: every image below `folder`, sorted by path; ids receives each one's path
// relative to the folder (the ImageID of a submission). No images is an Error.
Dataset load_image_list(const std::string& folder, std::vector<std::string>* ids = nullptr);

// Decisions where the layout leaves room (tests/test_dataset.cpp pins each):
//  - train.csv needs the columns gender, age and path (any order; others, such as id and race, are
//    ignored); gender is male or female in any case, age a non-negative decimal integer, path one folder
//    name (no slash, not a dot-name). Two rows with the same path are an Error.
//  - A person folder holding two images of one stem (mask1.jpg and mask1.png) is ambiguous: reported and
//    skipped like a missing image. Other non-dot entries of a person folder, and folders of images/ that
//    train.csv does not name, are reported as ignored; the person is kept.
//  - The relabel file must name people of train.csv (an unknown path is an Error naming its line: a typo
//    would silently leave the label wrong); a relabelled person whose images are missing is still skipped.
//    Each (path, field) may appear once.
//  - Samples come in train.csv order, each person's images as mask1..mask5, incorrect_mask, normal.
//  - The prediction set keeps every info.csv row (the submission needs each): a missing image is reported
//    in problems and left for the loader to report again and replace; class_names stays empty (the model
//    knows its classes). Its group is the ImageID, its stratum 0.
//  - Image folders: a class's folder is searched recursively (like ImageFolder), dot-names skipped, files
//    sorted by path; group = the file, stratum = the label. A class without images is reported.
//  - Extensions .jpg, .jpeg and .png match in any case, the seven stems exactly; images are not decoded on
//    load, so a corrupt file surfaces only when the loader decodes it.

// A CSV file as RFC 4180 writes it: comma-separated fields, double quotes around fields holding commas,
// quotes ("" inside) or line breaks; LF or CRLF line ends; an optional UTF-8 byte-order mark; empty lines
// skipped. A malformed file is an Error "NAME:LINE: problem".
struct CsvTable {
  std::string name;  // the file, for messages
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each exactly header.size() fields
  std::vector<int64_t> lines;                  // the line each row starts on (1-based)
  int64_t header_line = 1;

  // The index of a header column; an Error naming the file and its header when absent.
  size_t column(const std::string& column_name) const;
  // A field read whole as a decimal number (inf and nan included); an Error "NAME:LINE: column C is 'x',
  // not a number" otherwise.
  double number(size_t row, size_t column_index) const;
};

CsvTable parse_csv(const std::string& text, const std::string& name);
CsvTable read_csv(const std::string& path);
// Atomic (temporary file, then rename); fields quoted where RFC 4180 requires; LF line ends.
void write_csv(const std::string& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows);

}  // namespace effnet::data
