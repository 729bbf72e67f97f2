#include "io/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "tensor/error.h"

namespace effnet::io {

namespace {

// The reflected Castagnoli polynomial; table-driven, one byte at a time (event files are small).
constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

// Protobuf wire format: a key is (field number << 3) | wire type; 0 varint, 1 64-bit, 2 length-delimited,
// 5 32-bit. Little-endian fixed-width values.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <class T>
void put_fixed(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_key(std::string& out, uint32_t field, uint32_t wire_type) { put_varint(out, (field << 3) | wire_type); }

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string event(double wall_time, int64_t step, std::string_view file_version, std::string_view summary) {
  std::string e;
  put_key(e, 1, 1);
  put_fixed(e, wall_time);
  if (step != 0) {
    put_key(e, 2, 0);
    put_varint(e, static_cast<uint64_t>(step));
  }
  if (!file_version.empty()) put_bytes(e, 3, file_version);
  if (!summary.empty()) put_bytes(e, 5, summary);
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  EFFNET_CHECK(!ec, "tensorboard: cannot create ", directory, ": ", ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  path_ = directory + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(now_seconds())) + "." + host;
  file_ = std::fopen(path_.c_str(), "ab");
  EFFNET_CHECK(file_ != nullptr, "tensorboard: cannot open ", path_, " for writing");
  write_record(event(now_seconds(), 0, "brain.Event:2", ""));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string record;
  put_fixed<uint64_t>(record, data.size());
  put_fixed<uint32_t>(record, masked_crc32c(record.data(), 8));
  record += data;
  put_fixed<uint32_t>(record, masked_crc32c(data.data(), data.size()));
  EFFNET_CHECK(std::fwrite(record.data(), 1, record.size(), file_) == record.size(), "tensorboard: cannot write to ",
               path_);
}

void TensorBoardWriter::add_scalar(std::string_view tag, double value, int64_t step) {
  std::string value_message;
  put_bytes(value_message, 1, tag);
  put_key(value_message, 2, 5);
  put_fixed(value_message, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, value_message);
  write_record(event(now_seconds(), step, "", summary));
}

void TensorBoardWriter::flush() {
  EFFNET_CHECK(std::fflush(file_) == 0, "tensorboard: cannot flush ", path_);
}

}  // namespace effnet::io
