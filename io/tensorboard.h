// TensorBoard event files, written without TensorFlow or protobuf.
//
// A file named events.out.tfevents.<unix time>.<host> is a sequence of records (TFRecord framing):
//   uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
//   masked_crc(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, crc32c = CRC-32 with the Castagnoli polynomial
// Each record's data is a serialized tensorflow.Event protobuf:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// The first record holds file_version "brain.Event:2"; then one Event per add_scalar.
// `tensorboard --logdir RUN_DIR` shows the scalars (tools/reference/read_tensorboard.py reads them back).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace effnet::io {

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
uint32_t masked_crc32c(const void* data, size_t size);

class TensorBoardWriter {
 public:
  // Creates `directory` if needed and a new event file in it.
  explicit TensorBoardWriter(const std::string& directory);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void add_scalar(std::string_view tag, double value, int64_t step);
  void flush();  // records reach the disk: TensorBoard reads files while they grow
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace effnet::io
