// TensorBoard event files: CRC32C, record framing and the Event/Summary encoding, read back by hand.
// (tools/reference/read_tensorboard.py reads the same files with the tensorboard package.)
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/tensorboard.h"

namespace effnet::io {
namespace {

TEST(TensorBoard, Crc32cOfTheStandardCheckString) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c("", 0), 0u);
  // Incremental computation equals one pass.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);
}

struct Record {
  std::string data;
};

// Splits a file into records, checking both masked CRCs of each.
std::vector<Record> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Record> records;
  size_t at = 0;
  while (at < bytes.size()) {
    uint64_t length;
    uint32_t length_crc, data_crc;
    std::memcpy(&length, bytes.data() + at, 8);
    std::memcpy(&length_crc, bytes.data() + at + 8, 4);
    EXPECT_EQ(length_crc, masked_crc32c(bytes.data() + at, 8));
    const std::string data = bytes.substr(at + 12, length);
    std::memcpy(&data_crc, bytes.data() + at + 12 + length, 4);
    EXPECT_EQ(data_crc, masked_crc32c(data.data(), data.size()));
    records.push_back({data});
    at += 12 + length + 4;
  }
  EXPECT_EQ(at, bytes.size());
  return records;
}

TEST(TensorBoard, WritesFramedEventsWithScalars) {
  const std::string dir = (std::filesystem::temp_directory_path() / "effnet_tb_test").string();
  std::filesystem::remove_all(dir);
  std::string path;
  {
    TensorBoardWriter writer(dir);
    writer.add_scalar("train/loss", 0.5, 1);
    writer.add_scalar("val/macro_f1", 0.25, 2);
    path = writer.path();
  }
  EXPECT_NE(std::filesystem::path(path).filename().string().find("events.out.tfevents."), std::string::npos);
  const std::vector<Record> records = read_records(path);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[0].data.find("brain.Event:2"), std::string::npos);
  // Event{wall_time (key 0x09), step (0x10, varint 1), summary (0x2a){value (0x0a){tag (0x0a), simple_value (0x15)}}}
  const std::string& e = records[1].data;
  EXPECT_EQ(static_cast<uint8_t>(e[0]), 0x09);
  EXPECT_EQ(static_cast<uint8_t>(e[9]), 0x10);
  EXPECT_EQ(static_cast<uint8_t>(e[10]), 1);
  EXPECT_EQ(static_cast<uint8_t>(e[11]), 0x2a);
  const size_t tag = e.find("train/loss");
  ASSERT_NE(tag, std::string::npos);
  EXPECT_EQ(static_cast<uint8_t>(e[tag + 10]), 0x15);
  float value;
  std::memcpy(&value, e.data() + tag + 11, 4);
  EXPECT_EQ(value, 0.5f);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace effnet::io
