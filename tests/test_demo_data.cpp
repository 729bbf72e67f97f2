// The synthetic dataset: it loads with no problem reported, covers the 18 classes, mixes extensions, hides
// its one corrupt file until decoding, matches eval/info.csv to eval/images, and is a pure function of the
// seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "data/dataset.h"
#include "data/demo_data.h"
#include "data/image.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace effnet::data {
namespace fs = std::filesystem;
namespace {

using test::error_of;
using test::TempDir;

DemoOptions small_demo(uint64_t seed = 0) {
  DemoOptions o;
  o.people = 30;
  o.height = 64;
  o.width = 48;
  o.eval_images = 20;
  o.seed = seed;
  return o;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// One demo tree per test binary run: writing takes a moment.
class DemoData : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>("demo_data");
    written_ = write_demo_dataset(root(), small_demo());
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::string root() { return dir_->path() + "/demo"; }

  static inline std::unique_ptr<TempDir> dir_;
  static inline int64_t written_ = 0;
};

TEST_F(DemoData, LoadsWithNoProblemAndEveryClass) {
  EXPECT_EQ(written_, 30 * 7 + 20);
  const Dataset raw = load_mask_train(root());
  EXPECT_TRUE(raw.problems.empty()) << raw.problems[0];  // the corrupt file is not decoded on load
  ASSERT_EQ(raw.samples.size(), 30u * 7);

  MaskOptions options;
  options.relabel_file = root() + "/train/relabel.csv";
  const CsvTable relabel = read_csv(options.relabel_file);
  EXPECT_EQ(relabel.rows.size(), 4u);
  const Dataset fixed = load_mask_train(root(), options);
  EXPECT_TRUE(fixed.problems.empty());
  std::set<int64_t> classes;
  std::set<std::string> relabelled;
  for (size_t i = 0; i < fixed.samples.size(); ++i) {
    classes.insert(fixed.samples[i].label);
    if (fixed.samples[i].label != raw.samples[i].label) relabelled.insert(fixed.samples[i].group);
  }
  EXPECT_EQ(classes.size(), 18u);
  EXPECT_EQ(relabelled.size(), 4u);  // each relabel row changes its person's labels
  for (const auto& row : relabel.rows) EXPECT_EQ(relabelled.count(row[0]), 1u) << row[0];

  MaskOptions t58 = options;
  t58.age_threshold = 58;
  std::set<int64_t> classes58;
  for (const Sample& s : load_mask_train(root(), t58).samples) classes58.insert(s.label);
  EXPECT_EQ(classes58.size(), 18u);
}

TEST_F(DemoData, HasTheCompetitionsQuirks) {
  const CsvTable train = read_csv(root() + "/train/train.csv");
  EXPECT_EQ(train.header, (std::vector<std::string>{"id", "gender", "race", "age", "path"}));
  std::map<std::string, int> ids;
  bool suffix = false;
  for (const auto& row : train.rows) {
    ++ids[row[0]];
    suffix |= row[0].find('-') != std::string::npos;
    EXPECT_EQ(row[4], row[0] + "_" + row[1] + "_" + row[2] + "_" + row[3]);
    const int age = std::stoi(row[3]);
    EXPECT_TRUE(age >= 18 && age <= 60) << age;
  }
  EXPECT_TRUE(suffix);
  EXPECT_EQ(std::count_if(ids.begin(), ids.end(), [](const auto& id) { return id.second == 2; }), 1);

  std::map<std::string, int> extensions;
  int apple_double = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("._", 0) == 0) {
      ++apple_double;
    } else if (entry.is_regular_file() && entry.path().parent_path().parent_path().filename() == "images") {
      ++extensions[entry.path().extension().string()];
    }
  }
  EXPECT_GT(extensions[".jpg"], 100);
  EXPECT_GT(extensions[".png"], 0);
  EXPECT_GT(extensions[".jpeg"], 0);
  EXPECT_TRUE(fs::is_directory(root() + "/train/._images"));
  EXPECT_TRUE(fs::exists(root() + "/train/._train.csv"));
  EXPECT_GE(apple_double, 4);
}

TEST_F(DemoData, OnlyTheCorruptFileFailsToDecode) {
  std::vector<std::string> failed;
  const auto check = [&](const Dataset& d) {
    for (const Sample& s : d.samples) {
      try {
        const Image image = decode_image(s.path);
        EXPECT_EQ(image.height, 64);
        EXPECT_EQ(image.width, 48);
      } catch (const ImageError&) {
        failed.push_back(s.path);
      }
    }
  };
  check(load_mask_train(root()));
  check(load_mask_eval(root()));
  ASSERT_EQ(failed.size(), 1u);
  const CsvTable train = read_csv(root() + "/train/train.csv");
  EXPECT_EQ(failed[0], root() + "/train/images/" + train.rows[30 / 3][4] + "/mask2.jpg");
}

TEST_F(DemoData, EvalInfoMatchesItsImages) {
  std::vector<std::string> ids;
  const Dataset eval = load_mask_eval(root(), &ids);
  EXPECT_TRUE(eval.problems.empty());
  EXPECT_EQ(ids.size(), 20u);
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(root() + "/eval/images")) {
    const std::string name = entry.path().filename().string();
    if (name[0] != '.') files.insert(name);
  }
  EXPECT_EQ(files, std::set<std::string>(ids.begin(), ids.end()));
  for (const std::string& id : ids) {
    ASSERT_EQ(id.size(), 44u) << id;
    EXPECT_EQ(id.substr(40), ".jpg");
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), 40u) << id;
  }
  const CsvTable info = read_csv(root() + "/eval/info.csv");
  EXPECT_EQ(info.header, (std::vector<std::string>{"ImageID", "ans"}));
  for (const auto& row : info.rows) EXPECT_EQ(row[1], "0");
  const CsvTable answers = read_csv(root() + "/eval/answers.csv");
  ASSERT_EQ(answers.rows.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(answers.rows[i][0], ids[i]);
    const int label = std::stoi(answers.rows[i][1]), age = std::stoi(answers.rows[i][2]);
    EXPECT_EQ(label % 3, age_band(age, 60));
  }
}

TEST_F(DemoData, IsAPureFunctionOfTheSeed) {
  TempDir again("demo_data_again");
  write_demo_dataset(again / "same", small_demo());
  write_demo_dataset(again / "other", small_demo(1));
  const CsvTable train = read_csv(root() + "/train/train.csv");
  const Dataset d = load_mask_train(root());
  for (const std::string& relative :
       {std::string("train/train.csv"), std::string("eval/info.csv"),
        d.samples[0].path.substr(root().size() + 1), d.samples[101].path.substr(root().size() + 1),
        d.samples[209].path.substr(root().size() + 1)}) {
    const std::string original = bytes_of(root() + "/" + relative);
    EXPECT_FALSE(original.empty()) << relative;
    EXPECT_EQ(bytes_of(again / ("same/" + relative)), original) << relative;
  }
  EXPECT_NE(bytes_of(again / "other/train/train.csv"), bytes_of(root() + "/train/train.csv"));
  EXPECT_NE(bytes_of(again / "other/eval/info.csv"), bytes_of(root() + "/eval/info.csv"));
}

TEST(DemoDataErrors, RefusesExistingFoldersAndBadOptions) {
  TempDir dir("demo_data_errors");
  dir.write("used/train/x", "x");
  const std::string used = error_of([&] { write_demo_dataset(dir / "used", small_demo()); });
  EXPECT_NE(used.find("used/train: already exists"), std::string::npos) << used;
  dir.write("file", "x");
  const std::string not_a_folder = error_of([&] { write_demo_dataset(dir / "file", small_demo()); });
  EXPECT_EQ(not_a_folder.rfind("write_demo_dataset: ", 0), 0u) << not_a_folder;
  DemoOptions o = small_demo();
  o.people = 0;
  EXPECT_EQ(error_of([&] { write_demo_dataset(dir / "a", o); }),
            "write_demo_dataset: people must be at least 1, got 0");
  o = small_demo();
  o.height = 16;
  EXPECT_EQ(error_of([&] { write_demo_dataset(dir / "b", o); }),
            "write_demo_dataset: the size must lie in 32 .. 4096 on each side, got 16x48");
  o = small_demo();
  o.eval_images = -1;
  EXPECT_TRUE(error_of([&] { write_demo_dataset(dir / "c", o); }).find("eval_images") != std::string::npos);
}

}  // namespace
}  // namespace effnet::data
