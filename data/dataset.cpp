// The datasets of data/dataset.h: a small RFC 4180 CSV reader and writer, the competition's train and
// prediction sets (train.csv, person folders, the relabel file) and torchvision-style class folders.
// Nothing is decoded here: loading lists files and reads CSVs, so it is fast on 18,900 images; bad images
// are the loader's to report. The decisions where the layout leaves room are listed in dataset.h.
#include "data/dataset.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "io/atomic_file.h"
#include "tensor/error.h"

namespace effnet::data {
namespace fs = std::filesystem;

namespace {

// The seven images of a person, in sample order, and their mask status.
constexpr std::array<const char*, 7> kStems{"mask1", "mask2", "mask3", "mask4",
                                            "mask5", "incorrect_mask", "normal"};
constexpr std::array<int64_t, 7> kStemMask{0, 0, 0, 0, 0, 1, 2};

bool is_dot_name(const std::string& name) { return !name.empty() && name[0] == '.'; }

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return text;
}

// "mask1.JPG" -> "mask1"; "" when the name has no image extension.
std::string image_stem(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return "";
  const std::string ext = lower(name.substr(dot + 1));
  return ext == "jpg" || ext == "jpeg" || ext == "png" ? name.substr(0, dot) : "";
}

// The names in a folder, dot-names left out, sorted; an Error naming the folder when it cannot be read.
std::vector<std::string> list_folder(const fs::path& folder) {
  std::error_code error;
  fs::directory_iterator it(folder, error);
  if (error) EFFNET_FAIL(folder.string(), ": cannot list the folder: ", error.message());
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(error)) {
    if (error) break;
    const std::string name = it->path().filename().string();
    if (!is_dot_name(name)) names.push_back(name);
  }
  if (error) EFFNET_FAIL(folder.string(), ": cannot list the folder: ", error.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::string where(const CsvTable& csv, size_t row) { return detail::concat(csv.name, ":", csv.lines[row]); }

int64_t parse_gender(const std::string& text, const std::string& at) {
  const std::string g = lower(text);
  if (g == "male") return 0;
  if (g == "female") return 1;
  EFFNET_FAIL(at, ": unknown gender '", text, "' (expected male or female)");
}

int64_t parse_age(const std::string& text, const std::string& at) {
  int64_t age = -1;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, age);
  if (text.empty() || text[0] == '-' || text[0] == '+' || error != std::errc() || stop != end) {
    EFFNET_FAIL(at, ": age '", text, "' is not a non-negative integer");
  }
  return age;
}

// A single folder name: not empty, no separator, not a dot-name (dot-folders are ignored on disk).
void check_folder_name(const std::string& name, const char* what, const std::string& at) {
  EFFNET_CHECK(!name.empty(), at, ": empty ", what);
  EFFNET_CHECK(name.find('/') == std::string::npos && name.find('\\') == std::string::npos, at, ": ", what,
               " '", name, "' holds a path separator");
  EFFNET_CHECK(!is_dot_name(name), at, ": ", what, " '", name, "' starts with a dot (dot-names are ignored)");
}

struct Person {
  std::string path;
  int64_t gender = 0, age = 0, line = 0;
  bool mask_swap = false;
};

void apply_relabel(const std::string& file, std::vector<Person>& people,
                   const std::map<std::string, size_t>& by_path) {
  const CsvTable csv = read_csv(file);
  const size_t path_col = csv.column("path"), field_col = csv.column("field"),
               value_col = csv.column("value");
  std::map<std::pair<std::string, std::string>, int64_t> seen;  // (path, field) -> line
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string at = where(csv, r);
    const std::string& path = csv.rows[r][path_col];
    const std::string& field = csv.rows[r][field_col];
    const std::string& value = csv.rows[r][value_col];
    const auto person = by_path.find(path);
    EFFNET_CHECK(person != by_path.end(), at, ": no person '", path, "' in train.csv");
    const auto [first, inserted] = seen.emplace(std::pair{path, field}, csv.lines[r]);
    EFFNET_CHECK(inserted, at, ": a second '", field, "' for '", path, "' (the first is on line ",
                 first->second, ")");
    Person& p = people[person->second];
    if (field == "gender") {
      p.gender = parse_gender(value, at);
    } else if (field == "age") {
      p.age = parse_age(value, at);
    } else if (field == "mask-swap") {
      p.mask_swap = true;
    } else {
      EFFNET_FAIL(at, ": unknown field '", field, "' (expected gender, age or mask-swap)");
    }
  }
}

// The image files below a folder, recursively, dot-names (and what is inside dot-folders) skipped, sorted.
std::vector<std::string> images_below(const fs::path& folder) {
  std::vector<std::string> files;
  std::error_code error;
  fs::recursive_directory_iterator it(folder, error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (is_dot_name(name)) {
      if (it->is_directory()) it.disable_recursion_pending();
    } else if (!image_stem(name).empty() && it->is_regular_file()) {
      files.push_back(it->path().string());
    }
  }
  EFFNET_CHECK(!error, folder.string(), ": cannot list the folder: ", error.message());
  std::sort(files.begin(), files.end());
  return files;
}

// The seven image files of one person in sample order, or a problem (and an empty result).
std::vector<std::string> person_images(const fs::path& folder, std::vector<std::string>& problems) {
  std::map<std::string, std::vector<std::string>> by_stem;
  for (const std::string& name : list_folder(folder)) {
    const std::string stem = image_stem(name);
    const bool known = std::find(kStems.begin(), kStems.end(), stem) != kStems.end();
    if (known && fs::is_regular_file(folder / name)) {
      by_stem[stem].push_back(name);
    } else {
      problems.push_back((folder / name).string() + ": not one of the seven images, ignored");
    }
  }
  std::vector<std::string> files, missing;
  std::string clash;
  for (const char* stem : kStems) {
    const auto found = by_stem.find(stem);
    if (found == by_stem.end()) {
      missing.push_back(stem);
    } else if (found->second.size() > 1) {
      if (clash.empty()) {
        clash = detail::concat("two files for ", stem, " (", found->second[0], ", ", found->second[1], ")");
      }
    } else {
      files.push_back((folder / found->second[0]).string());
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string& stem : missing) list += (list.empty() ? "" : ", ") + stem;
    problems.push_back(folder.string() + ": no " + list + " image, person skipped");
    return {};
  }
  if (!clash.empty()) {
    problems.push_back(folder.string() + ": " + clash + ", person skipped");
    return {};
  }
  return files;
}

// Appends `text` as one CSV field, quoted when it must be.
void append_field(std::string& out, const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) {
    out += text;
    return;
  }
  out += '"';
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  out += '"';
}

}  // namespace

int64_t age_band(int64_t age, int64_t threshold) {
  EFFNET_CHECK(age >= 0, "age_band: negative age ", age);
  EFFNET_CHECK(threshold > 30,
               "age_band: the threshold must be above 30 (band 1 is 30 .. threshold - 1), got ", threshold);
  return age < 30 ? 0 : age < threshold ? 1 : 2;
}

int64_t mask_class(int64_t mask, int64_t gender, int64_t band) {
  EFFNET_CHECK(mask >= 0 && mask < 3 && gender >= 0 && gender < 2 && band >= 0 && band < 3,
               "mask_class: expected mask 0..2, gender 0..1, age band 0..2, got ", mask, ", ", gender, ", ",
               band);
  return mask * 6 + gender * 3 + band;
}

std::vector<std::string> mask_class_names(int64_t threshold) {
  age_band(0, threshold);  // validates the threshold
  const std::string bands[3] = {"0-29", detail::concat("30-", threshold - 1), detail::concat(threshold, "+")};
  std::vector<std::string> names;
  for (const char* mask : {"mask", "incorrect", "normal"}) {
    for (const char* gender : {"male", "female"}) {
      for (const std::string& band : bands) names.push_back(detail::concat(mask, "_", gender, "_", band));
    }
  }
  return names;
}

size_t CsvTable::column(const std::string& column_name) const {
  const auto found = std::find(header.begin(), header.end(), column_name);
  if (found != header.end()) return static_cast<size_t>(found - header.begin());
  std::string columns;
  for (const std::string& h : header) columns += (columns.empty() ? "" : ",") + h;
  EFFNET_FAIL(name, ":", header_line, ": no column '", column_name, "' in the header (", columns, ")");
}

double CsvTable::number(size_t row, size_t column_index) const {
  const std::string& text = rows[row][column_index];
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  EFFNET_CHECK(!text.empty() && end == text.c_str() + text.size(), name, ":", lines[row], ": column ",
               header[column_index], " is '", text, "', not a number");
  return value;
}

CsvTable parse_csv(const std::string& text, const std::string& name) {
  CsvTable csv;
  csv.name = name;
  size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  int64_t line = 1;
  std::vector<std::string> record;
  std::string field;
  const size_t n = text.size();
  // Consumes a line break at i (LF, CRLF or a lone CR), if any; true if there was one.
  const auto take_break = [&]() {
    if (i < n && (text[i] == '\n' || text[i] == '\r')) {
      i += text[i] == '\r' && i + 1 < n && text[i + 1] == '\n' ? 2 : 1;
      ++line;
      return true;
    }
    return false;
  };
  while (i < n) {
    const int64_t record_line = line;
    if (take_break()) continue;  // an empty line
    record.clear();
    while (true) {  // one field per turn
      field.clear();
      if (i < n && text[i] == '"') {
        const int64_t open_line = line;
        ++i;
        while (true) {
          EFFNET_CHECK(i < n, name, ":", open_line, ": a quoted field is not closed");
          if (text[i] == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= n || text[i + 1] != '\n'))) ++line;
          field += text[i++];
        }
        EFFNET_CHECK(i >= n || text[i] == ',' || text[i] == '\n' || text[i] == '\r', name, ":", line,
                     ": unexpected character '", text[i], "' after a closing quote");
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          EFFNET_CHECK(text[i] != '"', name, ":", line,
                       ": a quote inside an unquoted field (quote the whole field)");
          field += text[i++];
        }
      }
      record.push_back(field);
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      take_break();
      break;
    }
    if (csv.header.empty()) {
      for (size_t k = 0; k < record.size(); ++k) {
        EFFNET_CHECK(!record[k].empty(), name, ":", record_line, ": column ", k + 1,
                     " of the header has no name");
        EFFNET_CHECK(std::find(record.begin(), record.begin() + static_cast<std::ptrdiff_t>(k), record[k]) ==
                         record.begin() + static_cast<std::ptrdiff_t>(k),
                     name, ":", record_line, ": the header names column '", record[k], "' twice");
      }
      csv.header = record;
      csv.header_line = record_line;
      continue;
    }
    EFFNET_CHECK(record.size() == csv.header.size(), name, ":", record_line, ": expected ", csv.header.size(),
                 " fields, got ", record.size());
    csv.rows.push_back(record);
    csv.lines.push_back(record_line);
  }
  EFFNET_CHECK(!csv.header.empty(), name, ": empty file, expected a header line");
  return csv;
}

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EFFNET_CHECK(in, path, ": cannot open: ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  EFFNET_CHECK(!in.bad(), path, ": cannot read: ", std::strerror(errno));
  return parse_csv(text.str(), path);
}

void write_csv(const std::string& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows) {
  std::string text;
  const auto append_record = [&](const std::vector<std::string>& record) {
    EFFNET_CHECK(record.size() == header.size(), path, ": write_csv: a row of ", record.size(),
                 " fields under a header of ", header.size());
    for (size_t k = 0; k < record.size(); ++k) {
      if (k > 0) text += ',';
      append_field(text, record[k]);
    }
    text += '\n';
  };
  append_record(header);
  for (const auto& row : rows) append_record(row);
  io::write_file_atomically(path, text);
}

Dataset load_mask_train(const std::string& root, const MaskOptions& options) {
  age_band(0, options.age_threshold);  // validates the threshold before any file is read
  const fs::path train = fs::path(root) / "train";
  const CsvTable csv = read_csv((train / "train.csv").string());
  const size_t gender_col = csv.column("gender"), age_col = csv.column("age"), path_col = csv.column("path");

  std::vector<Person> people;
  std::map<std::string, size_t> by_path;
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string at = where(csv, r);
    Person p;
    p.path = csv.rows[r][path_col];
    check_folder_name(p.path, "path", at);
    p.gender = parse_gender(csv.rows[r][gender_col], at);
    p.age = parse_age(csv.rows[r][age_col], at);
    p.line = csv.lines[r];
    const auto [first, inserted] = by_path.emplace(p.path, people.size());
    EFFNET_CHECK(inserted, at, ": path '", p.path, "' repeats line ", people[first->second].line);
    people.push_back(p);
  }
  if (!options.relabel_file.empty()) apply_relabel(options.relabel_file, people, by_path);

  const fs::path images = train / "images";
  EFFNET_CHECK(fs::is_directory(images), images.string(),
               ": not a folder (expected the person folders there)");
  Dataset dataset;
  dataset.class_names = mask_class_names(options.age_threshold);
  std::set<std::string> folders;
  for (const std::string& name : list_folder(images)) {
    folders.insert(name);
    if (by_path.count(name) == 0) {
      dataset.problems.push_back((images / name).string() + ": not in train.csv, ignored");
    }
  }
  for (const Person& p : people) {
    const fs::path folder = images / p.path;
    if (folders.count(p.path) == 0 || !fs::is_directory(folder)) {
      dataset.problems.push_back(folder.string() + ": folder missing, person skipped");
      continue;
    }
    const std::vector<std::string> files = person_images(folder, dataset.problems);
    const int64_t band = age_band(p.age, options.age_threshold);
    for (size_t k = 0; k < files.size(); ++k) {
      int64_t mask = kStemMask[k];
      if (p.mask_swap && mask != 0) mask = 3 - mask;  // incorrect_mask <-> normal
      Sample s;
      s.path = files[k];
      s.label = mask_class(mask, p.gender, band);
      s.group = p.path;
      s.stratum = p.gender * 3 + band;
      dataset.samples.push_back(std::move(s));
    }
  }
  return dataset;
}

Dataset load_mask_eval(const std::string& root, std::vector<std::string>* image_ids) {
  const fs::path eval = fs::path(root) / "eval";
  const CsvTable csv = read_csv((eval / "info.csv").string());
  const size_t id_col = csv.column("ImageID");
  const fs::path images = eval / "images";
  EFFNET_CHECK(fs::is_directory(images), images.string(),
               ": not a folder (expected the prediction images there)");
  const std::vector<std::string> listed = list_folder(images);
  const std::set<std::string> present(listed.begin(), listed.end());
  Dataset dataset;
  std::map<std::string, int64_t> seen;  // ImageID -> line
  if (image_ids != nullptr) image_ids->clear();
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string& id = csv.rows[r][id_col];
    check_folder_name(id, "ImageID", where(csv, r));
    const fs::path file = images / id;
    if (present.count(id) == 0 || !fs::is_regular_file(file)) {
      dataset.problems.push_back(file.string() + ": image missing (kept: the submission needs the row)");
    }
    const auto [first, inserted] = seen.emplace(id, csv.lines[r]);
    if (!inserted) {
      dataset.problems.push_back(
          detail::concat(where(csv, r), ": ImageID '", id, "' repeats line ", first->second));
    }
    Sample s;
    s.path = file.string();
    s.group = id;
    dataset.samples.push_back(std::move(s));
    if (image_ids != nullptr) image_ids->push_back(id);
  }
  return dataset;
}

Dataset load_image_folder(const std::string& root) {
  EFFNET_CHECK(fs::is_directory(root), root, ": not a folder (expected one subfolder per class)");
  Dataset dataset;
  for (const std::string& name : list_folder(root)) {
    if (fs::is_directory(fs::path(root) / name)) dataset.class_names.push_back(name);
  }
  EFFNET_CHECK(!dataset.class_names.empty(), root, ": no class folders");
  for (size_t label = 0; label < dataset.class_names.size(); ++label) {
    const fs::path class_folder = fs::path(root) / dataset.class_names[label];
    const std::vector<std::string> files = images_below(class_folder);
    if (files.empty()) dataset.problems.push_back(class_folder.string() + ": no images");
    for (const std::string& file : files) {
      Sample s;
      s.path = file;
      s.label = static_cast<int64_t>(label);
      s.group = s.path;
      s.stratum = s.label;
      dataset.samples.push_back(std::move(s));
    }
  }
  return dataset;
}

Dataset load_image_list(const std::string& folder, std::vector<std::string>* ids) {
  EFFNET_CHECK(fs::is_directory(folder), folder, ": not a folder (expected the images to predict)");
  Dataset dataset;
  if (ids != nullptr) ids->clear();
  for (const std::string& file : images_below(folder)) {
    Sample s;
    s.path = file;
    s.group = fs::relative(file, folder).generic_string();
    if (ids != nullptr) ids->push_back(s.group);
    dataset.samples.push_back(std::move(s));
  }
  EFFNET_CHECK(!dataset.samples.empty(), folder, ": no .jpg, .jpeg or .png images below it");
  return dataset;
}

}  // namespace effnet::data
