// What the training tests share: a tiny demo dataset (30 people of 40x32 photos, 12 eval images), the
// tiny run configuration they start from, and readers for the CSV files a run writes.
#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "data/demo_data.h"
#include "tests/temp_dir.h"
#include "train/config.h"

namespace effnet::test {

inline std::unique_ptr<TempDir> write_tiny_demo(const std::string& tag) {
  auto dir = std::make_unique<TempDir>(tag);
  data::DemoOptions demo;
  demo.people = 30;
  demo.height = 40;
  demo.width = 32;
  demo.eval_images = 12;
  data::write_demo_dataset(dir->path(), demo);
  return dir;
}

// B0 on 32x24 crops, 2 epochs of batches of 8, fold 1 of 3, seed 7, predicting the eval set.
inline train::TrainConfig tiny_config(const std::string& data_root, const std::string& out) {
  train::TrainConfig c;
  c.data_root = data_root;
  c.model = "efficientnet_b0";
  c.crop = "32x24";
  c.hflip = 0.5;
  c.epochs = 2;
  c.batch_size = 8;
  c.folds = 3;
  c.fold = "1";
  c.dropout = 0.3;
  c.class_weights = "inverse";
  c.seed = 7;
  c.out = out;
  c.predict = true;
  return c;
}

inline std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
  return fields;
}

// metrics.csv without its time columns (the only ones an interruption may change).
inline std::vector<std::string> deterministic_columns(const std::string& metrics_csv) {
  std::vector<std::string> rows;
  for (const std::string& line : lines_of(metrics_csv)) {
    const std::vector<std::string> fields = fields_of(line);
    rows.push_back("");
    for (size_t c = 0; c < 7 && c < fields.size(); ++c) rows.back() += fields[c] + ",";
  }
  return rows;
}

}  // namespace effnet::test
