// Datasets on small trees of empty files (loading never decodes): the 18 labels, age thresholds, dot-files,
// mixed extensions, missing folders and images, the relabel file, the CSV reader's quoting and its errors
// (each naming the file and the line), the prediction set and class folders.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "data/dataset.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace effnet::data {
namespace {

using test::error_of;
using test::TempDir;

const std::vector<std::string> kStems{"mask1", "mask2",          "mask3", "mask4",
                                      "mask5", "incorrect_mask", "normal"};

// A person folder with the seven images; `ext[k]` is image k's extension (the last one repeats).
void add_person(const TempDir& dir, const std::string& path, const std::vector<std::string>& ext = {"jpg"}) {
  for (size_t k = 0; k < kStems.size(); ++k) {
    dir.write("train/images/" + path + "/" + kStems[k] + "." + ext[std::min(k, ext.size() - 1)], "x");
  }
}

std::string train_csv(const std::vector<std::string>& rows) {
  std::string text = "id,gender,race,age,path\n";
  for (const std::string& row : rows) text += row + "\n";
  return text;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The labels of one person's samples, in sample order.
std::vector<int64_t> labels_of(const Dataset& d, const std::string& group) {
  std::vector<int64_t> labels;
  for (const Sample& s : d.samples) {
    if (s.group == group) labels.push_back(s.label);
  }
  return labels;
}

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

TEST(Dataset, AgeBandsAndTheEighteenClasses) {
  EXPECT_EQ(age_band(18, 60), 0);
  EXPECT_EQ(age_band(29, 60), 0);
  EXPECT_EQ(age_band(30, 60), 1);
  EXPECT_EQ(age_band(57, 60), 1);
  EXPECT_EQ(age_band(58, 60), 1);
  EXPECT_EQ(age_band(59, 60), 1);
  EXPECT_EQ(age_band(60, 60), 2);
  EXPECT_EQ(age_band(57, 58), 1);
  EXPECT_EQ(age_band(58, 58), 2);
  EXPECT_EQ(age_band(59, 58), 2);
  for (int64_t mask = 0; mask < 3; ++mask) {
    for (int64_t gender = 0; gender < 2; ++gender) {
      for (int64_t band = 0; band < 3; ++band) {
        EXPECT_EQ(mask_class(mask, gender, band), mask * 6 + gender * 3 + band);
      }
    }
  }
  EXPECT_TRUE(contains(error_of([] { mask_class(3, 0, 0); }), "expected mask 0..2"));
  EXPECT_TRUE(contains(error_of([] { mask_class(0, 2, 0); }), "gender 0..1"));
  EXPECT_TRUE(contains(error_of([] { age_band(-1, 60); }), "negative age"));
  EXPECT_TRUE(contains(error_of([] { age_band(40, 30); }), "threshold must be above 30"));

  const std::vector<std::string> names = mask_class_names(60);
  ASSERT_EQ(static_cast<int64_t>(names.size()), kMaskClasses);
  EXPECT_EQ(names[0], "mask_male_0-29");
  EXPECT_EQ(names[4], "mask_female_30-59");
  EXPECT_EQ(names[mask_class(1, 0, 2)], "incorrect_male_60+");
  EXPECT_EQ(names[17], "normal_female_60+");
  EXPECT_EQ(mask_class_names(58)[2], "mask_male_58+");
}

TEST(Dataset, LabelsFollowMaskGenderAndAgeThreshold) {
  TempDir dir("dataset_labels");
  dir.write(
      "train/train.csv",
      train_csv({"000001,male,Asian,25,000001_male_Asian_25", "000002,female,Asian,45,000002_female_Asian_45",
                 "000003,male,Asian,58,000003_male_Asian_58", "000004,female,Asian,59,000004_female_Asian_59",
                 "000005,female,Asian,60,000005_female_Asian_60"}));
  for (const char* p : {"000001_male_Asian_25", "000002_female_Asian_45", "000003_male_Asian_58",
                        "000004_female_Asian_59", "000005_female_Asian_60"}) {
    add_person(dir, p);
  }
  const Dataset d60 = load_mask_train(dir.path());
  EXPECT_TRUE(d60.problems.empty());
  ASSERT_EQ(d60.samples.size(), 35u);
  EXPECT_EQ(d60.class_names, mask_class_names(60));
  // mask1..5 -> mask 0, incorrect_mask -> 1, normal -> 2
  EXPECT_EQ(labels_of(d60, "000001_male_Asian_25"), (std::vector<int64_t>{0, 0, 0, 0, 0, 6, 12}));
  EXPECT_EQ(labels_of(d60, "000002_female_Asian_45"), (std::vector<int64_t>{4, 4, 4, 4, 4, 10, 16}));
  EXPECT_EQ(labels_of(d60, "000003_male_Asian_58"), (std::vector<int64_t>{1, 1, 1, 1, 1, 7, 13}));
  EXPECT_EQ(labels_of(d60, "000004_female_Asian_59"), (std::vector<int64_t>{4, 4, 4, 4, 4, 10, 16}));
  EXPECT_EQ(labels_of(d60, "000005_female_Asian_60"), (std::vector<int64_t>{5, 5, 5, 5, 5, 11, 17}));
  // Samples in train.csv order, each person's images in the fixed order; group = path, stratum = g * 3 +
  // band.
  EXPECT_EQ(file_name(d60.samples[0].path), "mask1.jpg");
  EXPECT_EQ(file_name(d60.samples[5].path), "incorrect_mask.jpg");
  EXPECT_EQ(file_name(d60.samples[6].path), "normal.jpg");
  EXPECT_EQ(d60.samples[7].group, "000002_female_Asian_45");
  EXPECT_EQ(d60.samples[7].stratum, 4);
  EXPECT_TRUE(std::filesystem::exists(d60.samples[10].path));

  MaskOptions t58;
  t58.age_threshold = 58;
  const Dataset d58 = load_mask_train(dir.path(), t58);
  EXPECT_EQ(labels_of(d58, "000003_male_Asian_58"), (std::vector<int64_t>{2, 2, 2, 2, 2, 8, 14}));
  EXPECT_EQ(labels_of(d58, "000004_female_Asian_59"), (std::vector<int64_t>{5, 5, 5, 5, 5, 11, 17}));
  EXPECT_EQ(labels_of(d58, "000002_female_Asian_45"), (std::vector<int64_t>{4, 4, 4, 4, 4, 10, 16}));
  EXPECT_EQ(d58.samples[14].stratum, 2);
  EXPECT_EQ(d58.class_names[2], "mask_male_58+");
}

TEST(Dataset, IgnoresDotFilesAndAcceptsMixedExtensions) {
  TempDir dir("dataset_dots");
  dir.write("train/train.csv", train_csv({"001498-1,female,Asian,33,001498-1_female_Asian_33",
                                          "001498,male,Asian,20,001498_male_Asian_20"}));
  dir.write("train/._train.csv", "junk");
  dir.write("train/._images/._x.jpg", "junk");
  dir.write("train/images/._001498_male_Asian_20", "junk");
  dir.write("train/images/.DS_Store", "junk");
  dir.write("train/images/.hidden_folder/mask1.jpg", "x");
  add_person(dir, "001498-1_female_Asian_33", {"JPG", "jpeg", "PNG", "Jpeg", "png", "jpg", "JPEG"});
  add_person(dir, "001498_male_Asian_20", {"jpg", "png"});
  dir.write("train/images/001498_male_Asian_20/._mask1.jpg", "junk");
  dir.write("train/images/001498_male_Asian_20/._normal.png", "junk");
  dir.write("train/images/001498_male_Asian_20/.thumbs/normal.jpg", "x");
  const Dataset d = load_mask_train(dir.path());
  EXPECT_TRUE(d.problems.empty()) << d.problems[0];
  ASSERT_EQ(d.samples.size(), 14u);
  EXPECT_EQ(file_name(d.samples[0].path), "mask1.JPG");
  EXPECT_EQ(file_name(d.samples[2].path), "mask3.PNG");
  EXPECT_EQ(file_name(d.samples[6].path), "normal.JPEG");
  EXPECT_EQ(file_name(d.samples[7].path), "mask1.jpg");
  EXPECT_EQ(file_name(d.samples[13].path), "normal.png");
  for (const Sample& s : d.samples) EXPECT_FALSE(contains(s.path, "/.")) << s.path;
}

TEST(Dataset, ReportsAndSkipsIncompletePeople) {
  TempDir dir("dataset_missing");
  dir.write("train/train.csv", train_csv({"1,male,Asian,20,a", "2,male,Asian,20,b", "3,female,Asian,40,c",
                                          "4,female,Asian,40,d", "5,male,Asian,33,e"}));
  add_person(dir, "a");
  // b: no folder. c: lacks incorrect_mask and mask4. d: mask1 twice. e: complete, plus stray files.
  add_person(dir, "c");
  std::filesystem::remove(dir / "train/images/c/incorrect_mask.jpg");
  std::filesystem::remove(dir / "train/images/c/mask4.jpg");
  add_person(dir, "d");
  dir.write("train/images/d/mask1.png", "x");
  add_person(dir, "e");
  dir.write("train/images/e/notes.txt", "x");
  dir.write("train/images/e/mask6.jpg", "x");
  dir.write("train/images/z/mask1.jpg", "x");  // a folder train.csv does not name
  const Dataset d = load_mask_train(dir.path());
  ASSERT_EQ(d.samples.size(), 14u);  // a and e
  EXPECT_EQ(d.samples[0].group, "a");
  EXPECT_EQ(d.samples[7].group, "e");
  const std::string images = dir / "train/images/";
  EXPECT_EQ(d.problems, (std::vector<std::string>{
                            images + "z: not in train.csv, ignored",
                            images + "b: folder missing, person skipped",
                            images + "c: no mask4, incorrect_mask image, person skipped",
                            images + "d: two files for mask1 (mask1.jpg, mask1.png), person skipped",
                            images + "e/mask6.jpg: not one of the seven images, ignored",
                            images + "e/notes.txt: not one of the seven images, ignored",
                        }));
}

TEST(Dataset, RelabelFileFixesGenderAgeAndSwappedMasks) {
  TempDir dir("dataset_relabel");
  dir.write("train/train.csv", train_csv({"1,male,Asian,20,a", "2,female,Asian,40,b", "3,male,Asian,35,c",
                                          "4,male,Asian,35,gone"}));
  for (const char* p : {"a", "b", "c"}) add_person(dir, p);
  MaskOptions options;
  options.relabel_file = dir.write("relabel.csv",
                                   "path,field,value\r\na,gender,female\r\nb,age,60\r\n"
                                   "c,mask-swap,\r\ngone,age,30\r\n");
  const Dataset d = load_mask_train(dir.path(), options);
  EXPECT_EQ(labels_of(d, "a"), (std::vector<int64_t>{3, 3, 3, 3, 3, 9, 15}));
  EXPECT_EQ(labels_of(d, "b"), (std::vector<int64_t>{5, 5, 5, 5, 5, 11, 17}));
  EXPECT_EQ(d.samples[7].stratum, 5);
  // incorrect_mask.jpg now labelled "not worn", normal.jpg "worn incorrectly"
  EXPECT_EQ(labels_of(d, "c"), (std::vector<int64_t>{1, 1, 1, 1, 1, 13, 7}));
  EXPECT_EQ(file_name(d.samples[19].path), "incorrect_mask.jpg");
  EXPECT_EQ(d.samples[19].label, 13);
  EXPECT_EQ(d.problems.size(), 1u);  // "gone" has no folder: still skipped, relabel or not

  const auto relabel_error = [&](const std::string& text) {
    MaskOptions o;
    o.relabel_file = dir.write("bad.csv", text);
    return error_of([&] { load_mask_train(dir.path(), o); });
  };
  const std::string bad = dir / "bad.csv";
  EXPECT_EQ(relabel_error("path,field,value\na,age,30\nnobody,age,30\n"),
            bad + ":3: no person 'nobody' in train.csv");
  EXPECT_EQ(relabel_error("path,field,value\na,height,3\n"),
            bad + ":2: unknown field 'height' (expected gender, age or mask-swap)");
  EXPECT_EQ(relabel_error("path,field,value\na,gender,x\n"),
            bad + ":2: unknown gender 'x' (expected male or female)");
  EXPECT_EQ(relabel_error("path,field,value\na,age,old\n"),
            bad + ":2: age 'old' is not a non-negative integer");
  EXPECT_EQ(relabel_error("path,field,value\n\na,age,30\na,age,31\n"),
            bad + ":4: a second 'age' for 'a' (the first is on line 3)");
  EXPECT_EQ(relabel_error("path,value\n"), bad + ":1: no column 'field' in the header (path,value)");
  EXPECT_TRUE(contains(relabel_error("path,field,value\na,age\n"), bad + ":2: expected 3 fields, got 2"));
}

TEST(Dataset, MalformedTrainCsvRowsNameFileAndLine) {
  TempDir dir("dataset_malformed");
  std::filesystem::create_directories(dir / "train/images");
  const std::string csv = dir / "train/train.csv";
  const auto load_error = [&](const std::string& text) {
    dir.write("train/train.csv", text);
    return error_of([&] { load_mask_train(dir.path()); });
  };
  const std::string head = "id,gender,race,age,path\n";
  EXPECT_EQ(load_error(head + "1,male,Asian,20,a\n2,male,Asian,20\n"), csv + ":3: expected 5 fields, got 4");
  EXPECT_EQ(load_error(head + "1,male,Asian,20,\n"), csv + ":2: empty path");
  EXPECT_EQ(load_error(head + "1,male,Asian,2O,a\n"), csv + ":2: age '2O' is not a non-negative integer");
  EXPECT_EQ(load_error(head + "1,male,Asian,-3,a\n"), csv + ":2: age '-3' is not a non-negative integer");
  EXPECT_EQ(load_error(head + "1,male,Asian,,a\n"), csv + ":2: age '' is not a non-negative integer");
  EXPECT_EQ(load_error(head + "1,boy,Asian,20,a\n"),
            csv + ":2: unknown gender 'boy' (expected male or female)");
  EXPECT_EQ(load_error(head + "1,male,Asian,20,a\n2,female,Asian,30,a\n"),
            csv + ":3: path 'a' repeats line 2");
  EXPECT_EQ(load_error(head + "1,male,Asian,20,../x\n"), csv + ":2: path '../x' holds a path separator");
  EXPECT_EQ(load_error(head + "1,male,Asian,20,._a\n"),
            csv + ":2: path '._a' starts with a dot (dot-names are ignored)");
  EXPECT_EQ(load_error("id,gender,race,path\n"),
            csv + ":1: no column 'age' in the header (id,gender,race,path)");
  EXPECT_EQ(load_error(""), csv + ": empty file, expected a header line");
  EXPECT_EQ(load_error(head + "1,\"male,Asian,20,a\n"), csv + ":2: a quoted field is not closed");
  // Gender in any case; the id and race columns are not used.
  EXPECT_EQ(load_error(head + "1,Male,?,20,a\n2,FEMALE,,21,b\n"), "(no error)");
  std::filesystem::remove(dir / "train/images");
  EXPECT_TRUE(contains(load_error(head), "train/images: not a folder"));
  EXPECT_TRUE(
      contains(error_of([&] { load_mask_train(dir / "nowhere"); }), "nowhere/train/train.csv: cannot open"));
}

TEST(Csv, QuotingLineEndsAndByteOrderMark) {
  const CsvTable t = parse_csv(
      "\xEF\xBB\xBF"
      "a,b,c\r\n"
      "1,\"x, y\",\"say \"\"hi\"\"\"\r\n"
      "\r\n"
      "2,\"two\nlines\",\r\n"
      "\"\",3,\"\"\n"
      "4,5,6",
      "t.csv");
  EXPECT_EQ(t.name, "t.csv");
  EXPECT_EQ(t.header, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"1", "x, y", "say \"hi\""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"2", "two\nlines", ""}));
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"", "3", ""}));
  EXPECT_EQ(t.rows[3], (std::vector<std::string>{"4", "5", "6"}));
  EXPECT_EQ(t.lines, (std::vector<int64_t>{2, 4, 6, 7}));  // the empty line 3; row 2 spans lines 4-5
  EXPECT_EQ(t.column("c"), 2u);
  EXPECT_EQ(error_of([&] { t.column("d"); }), "t.csv:1: no column 'd' in the header (a,b,c)");
  EXPECT_EQ(error_of([] { parse_csv("\n\r\nx,y\n", "late.csv").column("z"); }),
            "late.csv:3: no column 'z' in the header (x,y)");

  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,\"x\"y\n", "q.csv"); }),
            "q.csv:2: unexpected character 'y' after a closing quote");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,x\"y\n", "q.csv"); }),
            "q.csv:2: a quote inside an unquoted field (quote the whole field)");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n\"1\n\n\",2\n3,4,5\n", "q.csv"); }),
            "q.csv:5: expected 2 fields, got 3");
  EXPECT_EQ(error_of([] { parse_csv("a,a\n", "q.csv"); }), "q.csv:1: the header names column 'a' twice");
  EXPECT_EQ(error_of([] { parse_csv("a,,b\n", "q.csv"); }), "q.csv:1: column 2 of the header has no name");
  EXPECT_EQ(error_of([] { parse_csv("\n\n", "q.csv"); }), "q.csv: empty file, expected a header line");
}

TEST(Csv, WriteQuotesWhereNeededAndReadsBack) {
  TempDir dir("csv_write");
  const std::string path = dir / "out.csv";
  const std::vector<std::vector<std::string>> rows{
      {"plain", "with,comma"}, {"quote \"q\"", "line\nbreak"}, {"", "x"}};
  write_csv(path, {"h1", "h2"}, rows);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const CsvTable t = read_csv(path);
  EXPECT_EQ(t.header, (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(t.rows, rows);
  const std::string short_header = error_of([&] { write_csv(path, {"h"}, {{"a", "b"}}); });
  EXPECT_TRUE(contains(short_header, "a row of 2 fields under a header of 1"));
  EXPECT_TRUE(contains(error_of([&] { write_csv(dir / "no/such/folder.csv", {"h"}, {}); }), "cannot open"));
}

TEST(Dataset, PredictionSetKeepsInfoCsvOrderAndEveryRow) {
  TempDir dir("dataset_eval");
  const std::string a = "cbc5c6e168e63498590db46022617123f1fe1268.jpg",
                    b = "0e72482bf56b3581c081f7da2a6180b8792c7089.jpg",
                    c = "b549040c49190cedc41327748aeb197c1670f14d.jpg";
  dir.write("eval/info.csv", "ImageID,ans\n" + a + ",0\n" + b + ",0\n" + c + ",0\n");
  dir.write("eval/images/" + a, "x");
  dir.write("eval/images/" + c, "x");
  dir.write("eval/images/._" + a, "junk");
  std::vector<std::string> ids;
  const Dataset d = load_mask_eval(dir.path(), &ids);
  EXPECT_EQ(ids, (std::vector<std::string>{a, b, c}));
  ASSERT_EQ(d.samples.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(d.samples[k].path, dir / ("eval/images/" + ids[k]));
    EXPECT_EQ(d.samples[k].label, -1);
    EXPECT_EQ(d.samples[k].group, ids[k]);
  }
  EXPECT_EQ(d.problems, (std::vector<std::string>{dir / ("eval/images/" + b) +
                                                  ": image missing (kept: the submission needs the row)"}));
  EXPECT_TRUE(d.class_names.empty());

  dir.write("eval/info.csv", "ImageID,ans\n" + a + ",0\n" + a + ",0\n");
  EXPECT_EQ(load_mask_eval(dir.path()).problems,
            (std::vector<std::string>{dir / "eval/info.csv" + ":3: ImageID '" + a + "' repeats line 2"}));
  dir.write("eval/info.csv", "ImageID,ans\n" + a + ",0\n../" + a + ",0\n");
  EXPECT_TRUE(contains(error_of([&] { load_mask_eval(dir.path()); }), "info.csv:3: ImageID '../"));
  dir.write("eval/info.csv", "ans\n0\n");
  EXPECT_TRUE(contains(error_of([&] { load_mask_eval(dir.path()); }), "info.csv:1: no column 'ImageID'"));
}

TEST(Dataset, ClassFoldersSortedWithDotFilesSkipped) {
  TempDir dir("dataset_folders");
  dir.write("root/dog/b.PNG", "x");
  dir.write("root/dog/a.jpg", "x");
  dir.write("root/dog/._a.jpg", "junk");
  dir.write("root/dog/readme.txt", "x");
  dir.write("root/cat/sub/c.jpeg", "x");
  dir.write("root/cat/.cache/d.jpg", "x");
  dir.write("root/.git/e.jpg", "x");
  dir.write("root/bird/notes.txt", "x");
  dir.write("root/stray.jpg", "x");
  const Dataset d = load_image_folder(dir / "root");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"bird", "cat", "dog"}));
  ASSERT_EQ(d.samples.size(), 3u);
  EXPECT_EQ(d.samples[0].path, dir / "root/cat/sub/c.jpeg");
  EXPECT_EQ(d.samples[0].label, 1);
  EXPECT_EQ(d.samples[1].path, dir / "root/dog/a.jpg");
  EXPECT_EQ(d.samples[2].path, dir / "root/dog/b.PNG");
  EXPECT_EQ(d.samples[2].label, 2);
  EXPECT_EQ(d.samples[2].group, d.samples[2].path);
  EXPECT_EQ(d.samples[2].stratum, 2);
  EXPECT_EQ(d.problems, (std::vector<std::string>{dir / "root/bird" + ": no images"}));
  EXPECT_TRUE(contains(error_of([&] { load_image_folder(dir / "none"); }), "not a folder"));
  EXPECT_TRUE(contains(error_of([&] { load_image_folder(dir / "root/dog"); }), "no class folders"));
}

}  // namespace
}  // namespace effnet::data
