// safetensors (io/safetensors.h): round trips of every writable dtype and layout, the bytes of the reference
// writer, half-precision decoding, one test per validation error, and a seeded mutation test which shows
// that a damaged file makes parse succeed or throw effnet::Error, never crash or throw anything else.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"
#include "tensor/ops.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr const char* kSource = "memory.safetensors";

// A file of the format: the header's length, the header, the data.
Bytes make_file(std::string_view header, const Bytes& data = {}) {
  const uint64_t length = header.size();
  Bytes file(sizeof length + header.size() + data.size());
  std::memcpy(file.data(), &length, sizeof length);
  std::copy(header.begin(), header.end(), file.begin() + sizeof length);
  std::copy(data.begin(), data.end(), file.end() - static_cast<std::ptrdiff_t>(data.size()));
  return file;
}

safetensors::File parse_bytes(const Bytes& file) {
  return safetensors::parse(file.data(), file.size(), kSource);
}

Bytes bytes_from_hex(std::string_view hex) {
  Bytes bytes;
  for (size_t k = 0; k + 1 < hex.size(); k += 2) {
    bytes.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(k, 2)), nullptr, 16)));
  }
  return bytes;
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A path in the test temporary folder, unique to this process and test.
std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "effnet_safetensors_" + std::to_string(::getpid()) + "_" + name;
}

// The tensor's elements as raw bytes, row-major, from the host: compares -0.0 and NaN payloads exactly.
Bytes raw_bytes(const Tensor& tensor) {
  const Tensor host = tensor.cpu().contiguous();
  const auto* begin = static_cast<const uint8_t*>(host.data_ptr());
  return Bytes(begin, begin + host.numel() * static_cast<int64_t>(element_size(host.dtype())));
}

void expect_same_tensor(const Tensor& expected, const Tensor& actual, const std::string& name) {
  ASSERT_TRUE(actual.defined()) << name;
  EXPECT_EQ(actual.dtype(), expected.dtype()) << name;
  EXPECT_EQ(actual.shape(), expected.shape()) << name;
  EXPECT_TRUE(actual.device().is_cpu()) << name;
  EXPECT_EQ(raw_bytes(actual), raw_bytes(expected)) << name;
}

// Saves, loads back, and checks names, order, values and metadata; no temporary file may be left over.
void expect_round_trip(const safetensors::NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata, const std::string& file_name) {
  const std::string path = temp_path(file_name);
  safetensors::save(path, tensors, metadata);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const safetensors::File file = safetensors::load(path);
  std::filesystem::remove(path);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    EXPECT_EQ(file.tensors[k].first, tensors[k].first);
    expect_same_tensor(tensors[k].second, file.tensors[k].second, tensors[k].first);
  }
  EXPECT_EQ(file.metadata, metadata);
}

// Success when `f` throws an effnet::Error whose message contains every one of `parts`.
template <class F>
::testing::AssertionResult throws_error_containing(F&& f, const std::vector<std::string_view>& parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (std::string_view part : parts) {
      if (message.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "the message \"" << message << "\" lacks \"" << part << "\"";
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-effnet exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

TEST(Safetensors, RoundTripsEveryWritableDtypeWithScalarsAndEmptyTensors) {
  Tensor extremes = empty({3}, kInt64);
  extremes.data<int64_t>()[0] = std::numeric_limits<int64_t>::min();
  extremes.data<int64_t>()[1] = -1;
  extremes.data<int64_t>()[2] = std::numeric_limits<int64_t>::max();
  const safetensors::NamedTensors tensors = {
      {"conv.weight", from_vector({1.5, -0.0, 3e38, -1e-40, 7, 8}, {2, 1, 3})},
      {"bn.momentum", scalar_tensor(0.1, kFloat64)},
      {"steps", extremes},
      {"empty_rows", zeros({0, 3})},
      {"empty_middle", zeros({2, 0, 5}, kFloat64)},
      {"empty_int", zeros({0}, kInt64)},
      {"scalar_float", scalar_tensor(-2.25)},
      {"big", randn({37, 41})},
  };
  expect_round_trip(tensors, {{"format", "pt"}, {"quote \"and\" \\ \n\t\x01 é", "value\x1f"}}, "dtypes");
  expect_round_trip({}, {}, "nothing");
}

TEST(Safetensors, SavesViewsAndTensorsOnEveryDevice) {
  // On CUDA machines the same views are also saved from the GPU.
  for (const Device device : test::test_devices()) {
    const Tensor base = arange(24, TensorOptions(kFloat32, device)).reshape({4, 6});
    const Tensor transposed = base.transpose(0, 1);
    const Tensor strided = base.slice(1, 1, 6, 2);
    const Tensor broadcast = from_vector({1, 2, 3}, {1, 3}, TensorOptions(kFloat64, device)).expand({4, 3});
    ASSERT_FALSE(transposed.is_contiguous());
    ASSERT_FALSE(strided.is_contiguous());
    const std::string path = temp_path("views_" + device.str());
    safetensors::save(path, {{"transposed", transposed}, {"strided", strided}, {"broadcast", broadcast}});
    const safetensors::File file = safetensors::load(path);
    std::filesystem::remove(path);
    ASSERT_EQ(file.tensors.size(), 3u);
    expect_same_tensor(transposed, file.find("transposed"), "transposed on " + device.str());
    expect_same_tensor(strided, file.find("strided"), "strided on " + device.str());
    expect_same_tensor(broadcast, file.find("broadcast"), "broadcast on " + device.str());
  }
}

TEST(Safetensors, SavesTensorsThatRequireGrad) {
  const Tensor weight = randn({3, 2}).requires_grad_();
  expect_round_trip({{"weight", weight}, {"scaled", weight * 2.0}}, {}, "grad");
}

TEST(Safetensors, FindReturnsTheNamedTensorOrAnUndefinedOne) {
  const safetensors::File file =
      parse_bytes(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", {0, 0, 128, 63}));
  EXPECT_EQ(file.find("a").item(), 1.0);
  EXPECT_FALSE(file.find("b").defined());
}

// The reference writer's bytes, from the official Python package (safetensors 0.8.0, numpy 2.4.6):
//
//   import numpy as np
//   from safetensors.numpy import save
//   save({"steps": np.array([7, -1], dtype=np.int64),
//         "scale": np.array(0.125, dtype=np.float64),
//         "empty": np.zeros((0, 3), dtype=np.float32),
//         "weight": np.array([[1.0, -2.5, 3.0], [0.5, 0.0, -0.0]], dtype=np.float32)},
//        metadata={"note": "a\"b\\c\n\u00e9\x01"}).hex()
//
// (One metadata key: the reference keeps metadata in a hash map, so the order of several is not fixed.)
constexpr std::string_view kReferenceFileHex =
    "20010000000000007b225f5f6d657461646174615f5f223a7b226e6f7465223a22615c22625c5c635c6ec3a95c753030"
    "3031227d2c227374657073223a7b226474797065223a22493634222c227368617065223a5b325d2c22646174615f6f66"
    "6673657473223a5b302c31365d7d2c227363616c65223a7b226474797065223a22463634222c227368617065223a5b5d"
    "2c22646174615f6f666673657473223a5b31362c32345d7d2c22656d707479223a7b226474797065223a22463332222c"
    "227368617065223a5b302c335d2c22646174615f6f666673657473223a5b32342c32345d7d2c22776569676874223a7b"
    "226474797065223a22463332222c227368617065223a5b322c335d2c22646174615f6f666673657473223a5b32342c34"
    "385d7d7d202020200700000000000000ffffffffffffffff000000000000c03f0000803f000020c0000040400000003f"
    "0000000000000080";

TEST(Safetensors, WritesTheReferenceWritersBytesAndReadsThem) {
  const Bytes reference = bytes_from_hex(kReferenceFileHex);
  const std::map<std::string, std::string> metadata = {{"note", "a\"b\\c\n\xc3\xa9\x01"}};
  const safetensors::NamedTensors tensors = {
      {"steps", from_vector({7, -1}, {2}, kInt64)},
      {"scale", scalar_tensor(0.125, kFloat64)},
      {"empty", zeros({0, 3})},
      {"weight", from_vector({1.0, -2.5, 3.0, 0.5, 0.0, -0.0}, {2, 3})},
  };
  const std::string path = temp_path("reference");
  safetensors::save(path, tensors, metadata);
  EXPECT_EQ(read_file(path), reference);
  std::filesystem::remove(path);

  const safetensors::File file = parse_bytes(reference);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    EXPECT_EQ(file.tensors[k].first, tensors[k].first);
    expect_same_tensor(tensors[k].second, file.tensors[k].second, tensors[k].first);
  }
  EXPECT_EQ(file.metadata, metadata);
}

// The float32 bit patterns that `halves` (F16 or BF16 bits) load as.
std::vector<uint32_t> load_halves_as_float_bits(const char* dtype, const std::vector<uint16_t>& halves) {
  Bytes data(halves.size() * 2);
  std::memcpy(data.data(), halves.data(), data.size());
  const std::string header = std::string(R"({"h":{"dtype":")") + dtype + R"(","shape":[)" +
                             std::to_string(halves.size()) + R"(],"data_offsets":[0,)" +
                             std::to_string(data.size()) + "]}}";
  const Tensor loaded = parse_bytes(make_file(header, data)).find("h");
  EXPECT_EQ(loaded.dtype(), kFloat32);
  std::vector<uint32_t> bits(halves.size());
  std::memcpy(bits.data(), loaded.data_ptr(), bits.size() * 4);
  return bits;
}

uint32_t float_bits(float value) { return std::bit_cast<uint32_t>(value); }

TEST(Safetensors, DecodesFloat16Exactly) {
  const std::vector<uint16_t> halves = {
      0x3C00,  // 1.0
      0xC100,  // -2.5
      0x7BFF,  // 65504, the largest half
      0x0001,  // 2^-24, the smallest subnormal
      0x03FF,  // the largest subnormal, 1023 x 2^-24
      0x0400,  // 2^-14, the smallest normal
      0x8000,  // -0.0
      0x7C00,  // inf
      0xFC00,  // -inf
      0x7E00,  // the quiet NaN
      0x7C01,  // a signalling NaN: the payload survives
  };
  const std::vector<uint32_t> expected = {
      float_bits(1.0f),     float_bits(-2.5f),           float_bits(65504.0f),
      float_bits(0x1p-24f), float_bits(1023 * 0x1p-24f), float_bits(0x1p-14f),
      float_bits(-0.0f),    0x7F800000u,                 0xFF800000u,
      0x7FC00000u,          0x7F802000u,
  };
  EXPECT_EQ(load_halves_as_float_bits("F16", halves), expected);
}

TEST(Safetensors, DecodesBFloat16Exactly) {
  const std::vector<uint16_t> halves = {
      0x3F80,  // 1.0
      0xC020,  // -2.5
      0x477F,  // 65280, the bfloat16 just below 65504 (which bfloat16 cannot hold)
      0x0001,  // 2^-133, the smallest subnormal
      0x7F7F,  // the largest bfloat16
      0x7F80,  // inf
      0xFF80,  // -inf
      0x7FC0,  // NaN
  };
  const std::vector<uint32_t> expected = {
      float_bits(1.0f), float_bits(-2.5f), float_bits(65280.0f), float_bits(0x1p-133f),
      0x7F7F0000u,      0x7F800000u,       0xFF800000u,          0x7FC00000u,
  };
  EXPECT_EQ(load_halves_as_float_bits("BF16", halves), expected);
}

TEST(Safetensors, AcceptsTheFormatsCornerCases) {
  EXPECT_TRUE(parse_bytes(make_file("{}")).tensors.empty());
  // Whitespace around tokens, escapes in names, zero-size tensors on a boundary and sharing an offset.
  const safetensors::File file = parse_bytes(make_file(
      " {\n \"w\\u00e9\\ud83d\\ude00\\/\" : { \"shape\" : [ ] ,"
      " \"data_offsets\" : [ 0 , 4 ], \"dtype\":\"F32\"},"
      "\"e1\":{\"dtype\":\"F64\",\"shape\":[0,1000000],\"data_offsets\":[4,4]},"
      "\"e2\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[4,4]}}\t\r\n   ",
      {0, 0, 192, 63}));
  ASSERT_EQ(file.tensors.size(), 3u);
  EXPECT_EQ(file.tensors[0].first, "w\xc3\xa9\xf0\x9f\x98\x80/");
  EXPECT_EQ(file.tensors[0].second.item(), 1.5);
  EXPECT_EQ(file.tensors[0].second.dim(), 0);
  EXPECT_EQ(file.find("e1").shape(), (Shape{0, 1000000}));
  EXPECT_EQ(file.find("e2").dtype(), kInt64);

  std::string sixty_four_ones = "1";
  for (int k = 1; k < 64; ++k) sixty_four_ones += ",1";
  const std::string most_dims =
      R"({"a":{"dtype":"F32","shape":[)" + sixty_four_ones + R"(],"data_offsets":[0,4]}})";
  EXPECT_EQ(parse_bytes(make_file(most_dims, {0, 0, 128, 63})).find("a").dim(), 64);
}

// One damaged file, and what its error message must mention.
struct BadFile {
  std::string what;
  Bytes file;
  std::vector<std::string_view> message_parts;
};

// A file with one tensor, "a", whose header entry is the JSON `entry`, and `data_bytes` bytes of data.
Bytes one_tensor_file(const std::string& entry, size_t data_bytes = 8) {
  return make_file("{\"a\":" + entry + "}", Bytes(data_bytes, 0));
}

TEST(Safetensors, EveryValidationErrorNamesTheSourceAndTheProblem) {
  Bytes long_header_length = make_file("{}");
  long_header_length[0] = 100;
  Bytes huge_header_length = make_file("{}");
  huge_header_length[5] = 1;  // 2^40
  const std::string two_f32 = R"("dtype":"F32","shape":[2])";
  std::string sixty_five_ones = "1";
  for (int k = 1; k < 65; ++k) sixty_five_ones += ",1";
  const std::vector<BadFile> cases = {
      {"shorter than the length", {1, 2, 3}, {"holds 3 bytes", "fewer than the 8"}},
      {"length beyond the file", long_header_length, {"header length 100", "past the end of the file"}},
      {"length above the cap", huge_header_length, {"header length 1099511627778", "100 MiB"}},
      {"empty header", make_file(""), {"expected an object", "end of the header"}},
      {"not an object", make_file("[]"), {"expected an object", "found an array"}},
      {"missing colon", make_file(R"({"a" {}})"), {"expected ':'"}},
      {"trailing comma", make_file(R"({"a":{"dtype":"F32",}})"), {"expected a string (a key)", "found '}'"}},
      {"missing comma", make_file(R"({"a":{"dtype":"F32" "shape":[2]}})"), {"expected ',' or '}'"}},
      {"unterminated string", make_file(R"({"a)"), {"string runs to the end"}},
      {"garbage after the object", make_file("{} x"), {"expected the end of the header", "'x'"}},
      {"invalid escape", make_file(R"({"a\q":1})"), {"invalid escape"}},
      {"lone low surrogate", make_file(R"({"\udc00":1})"), {"lone low surrogate"}},
      {"unpaired high surrogate", make_file(R"({"\ud800x":1})"), {"no low surrogate"}},
      {"short \\u escape", make_file(R"({"\u12":1})"), {"four hex digits"}},
      {"bytes that are not UTF-8", make_file("{\"a\xff\":1}"), {"not UTF-8"}},
      {"overlong UTF-8", make_file("{\"a\xc0\xaf\":1}"), {"not UTF-8"}},
      {"raw control character", make_file("{\"a\nb\":1}"), {"control character"}},
      {"literal", one_tensor_file(R"({"dtype":null})"),
       {"tensor 'a'", "'dtype'", "expected a string", "null"}},
      {"unknown dtype", one_tensor_file(R"({"dtype":"Q4","shape":[2],"data_offsets":[0,8]})"),
       {"tensor 'a'", "dtype 'Q4'", "F32, F64, I64, F16, BF16"}},
      {"unsupported dtype", one_tensor_file(R"({"dtype":"I32","shape":[2],"data_offsets":[0,8]})"),
       {"tensor 'a'", "dtype 'I32'"}},
      {"negative size", one_tensor_file(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"),
       {"tensor 'a'", "'shape'", "expected a non-negative integer", "negative number"}},
      {"fractional size", one_tensor_file(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"),
       {"tensor 'a'", "'shape'", "fraction or an exponent"}},
      {"exponent", one_tensor_file(R"({"dtype":"F32","shape":[2e0],"data_offsets":[0,8]})"),
       {"tensor 'a'", "fraction or an exponent"}},
      {"leading zero", one_tensor_file(R"({"dtype":"F32","shape":[02],"data_offsets":[0,8]})"),
       {"tensor 'a'", "leading zero"}},
      {"string size", one_tensor_file(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"),
       {"tensor 'a'", "'shape'", "expected a non-negative integer", "found a string"}},
      {"size above int64",
       one_tensor_file(R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]})"),
       {"tensor 'a'", "above 2^63 - 1"}},
      {"integer above uint64",
       one_tensor_file(R"({"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]})"),
       {"tensor 'a'", "'data_offsets'", "above 2^64 - 1"}},
      {"element count overflow",
       one_tensor_file(R"({"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]})", 0),
       {"tensor 'a'", "[4294967296, 4294967296, 0]", "more elements"}},
      {"byte size overflow",
       one_tensor_file(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]})"),
       {"tensor 'a'", "more bytes"}},
      {"too many dimensions", one_tensor_file(R"({"dtype":"F32","shape":[)" + sixty_five_ones + "]}", 4),
       {"tensor 'a'", "more than 64 dimensions"}},
      {"missing key", one_tensor_file(R"({"dtype":"F32","shape":[2]})"), {"tensor 'a'", "no 'data_offsets'"}},
      {"unknown key", one_tensor_file("{" + two_f32 + R"(,"data_offsets":[0,8],"x":1})"),
       {"tensor 'a'", "key 'x'", "unknown key"}},
      {"duplicate key", one_tensor_file("{" + two_f32 + R"(,"shape":[2],"data_offsets":[0,8]})"),
       {"tensor 'a'", "key 'shape'", "duplicate key"}},
      {"one offset", one_tensor_file("{" + two_f32 + R"(,"data_offsets":[8]})"),
       {"tensor 'a'", "1 data_offsets"}},
      {"three offsets", one_tensor_file("{" + two_f32 + R"(,"data_offsets":[0,8,8]})"),
       {"tensor 'a'", "more than two data_offsets"}},
      {"offsets backwards", one_tensor_file("{" + two_f32 + R"(,"data_offsets":[8,0]})"),
       {"tensor 'a'", "ends before it begins"}},
      {"offsets past the data", one_tensor_file("{" + two_f32 + R"(,"data_offsets":[4,12]})"),
       {"tensor 'a' (F32 [2], data_offsets [4, 12])", "past the data area", "holds 8 bytes"}},
      {"size mismatch", one_tensor_file("{" + two_f32 + R"(,"data_offsets":[0,4]})", 4),
       {"tensor 'a'", "holds 4 bytes", "needs 8"}},
      {"overlap",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 Bytes(12)),
       {"tensor 'b'", "overlaps tensor 'a'"}},
      {"zero-size tensor inside another",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                 Bytes(8)),
       {"tensor 'a'", "overlaps"}},
      {"hole",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 Bytes(12)),
       {"bytes [4, 8)", "tensor 'b'", "belong to no tensor"}},
      {"trailing bytes", one_tensor_file("{" + two_f32 + R"(,"data_offsets":[0,8]})", 11),
       {"last 3 bytes", "belong to no tensor"}},
      {"duplicate name",
       make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                 R"("a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})"),
       {"duplicate tensor name 'a'"}},
      {"metadata value not a string", make_file(R"({"__metadata__":{"k":1}})"),
       {"'__metadata__', key 'k'", "expected a string", "found a number"}},
      {"duplicate metadata key", make_file(R"({"__metadata__":{"k":"1","k":"2"}})"),
       {"key 'k'", "duplicate key"}},
      {"second metadata", make_file(R"({"__metadata__":{},"__metadata__":{}})"), {"second '__metadata__'"}},
  };
  for (const BadFile& bad : cases) {
    std::vector<std::string_view> parts = bad.message_parts;
    parts.push_back(kSource);
    EXPECT_TRUE(throws_error_containing([&] { parse_bytes(bad.file); }, parts)) << bad.what;
  }
}

TEST(Safetensors, FileErrorsNameThePath) {
  const std::string missing = temp_path("missing/none.safetensors");
  EXPECT_TRUE(throws_error_containing([&] { safetensors::load(missing); }, {missing, "cannot read"}));
  EXPECT_TRUE(throws_error_containing([&] { safetensors::save(missing, {{"a", zeros({1})}}); },
                                      {missing + ".tmp", "cannot open for writing"}));
  const std::string path = temp_path("refused.safetensors");
  EXPECT_TRUE(throws_error_containing([&] { safetensors::save(path, {{"a", Tensor()}}); },
                                      {path, "tensor 'a'", "undefined"}));
  const safetensors::NamedTensors twins = {{"a", zeros({1})}, {"a", zeros({2})}};
  EXPECT_TRUE(
      throws_error_containing([&] { safetensors::save(path, twins); }, {path, "two tensors are called 'a'"}));
  EXPECT_TRUE(throws_error_containing([&] { safetensors::save(path, {{"__metadata__", zeros({1})}}); },
                                      {path, "cannot be called '__metadata__'"}));
  EXPECT_TRUE(throws_error_containing([&] { safetensors::save(path, {{"a\xff", zeros({1})}}); },
                                      {path, "tensor 'a", "UTF-8"}));
  EXPECT_TRUE(throws_error_containing([&] { safetensors::save(path, {}, {{"k", "\xc3"}}); },
                                      {path, "metadata key 'k'", "UTF-8"}));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  // A damaged file on disk: the error names its path.
  std::ofstream(path, std::ios::binary) << "{}";
  EXPECT_TRUE(throws_error_containing([&] { safetensors::load(path); }, {path, "fewer than the 8"}));
  std::filesystem::remove(path);
}

// A valid file with every dtype, a zero-size tensor, a scalar and metadata: the mutation test's seed.
Bytes seed_file() {
  const std::string header =
      R"({"__metadata__":{"format":"pt","n\u00e9":"x"},)"
      R"("f32":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("f16":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
      R"("bf16":{"dtype":"BF16","shape":[2,1],"data_offsets":[22,26]},)"
      R"("i64":{"dtype":"I64","shape":[1],"data_offsets":[26,34]},)"
      R"("f64":{"dtype":"F64","shape":[],"data_offsets":[34,42]},)"
      R"("none":{"dtype":"F32","shape":[0,4],"data_offsets":[42,42]}}  )";
  Bytes data(42);
  for (size_t k = 0; k < data.size(); ++k) data[k] = static_cast<uint8_t>(k * 37 + 11);
  return make_file(header, data);
}

// Parses `file`, which may be damaged. Returns true when it parsed, false on an effnet::Error; records a
// failure naming `mutation` on anything else.
bool parses_or_fails_cleanly(const Bytes& file, const std::string& mutation) {
  try {
    parse_bytes(file);
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << mutation << ": threw a non-effnet exception: " << e.what();
  } catch (...) {
    ADD_FAILURE() << mutation << ": threw something that is not an exception";
  }
  return false;
}

TEST(Safetensors, MutatedFilesParseOrThrowEffnetErrors) {
  const Bytes seed = seed_file();
  ASSERT_EQ(parse_bytes(seed).tensors.size(), 6u);
  const uint64_t seed_header_length = seed.size() - 8 - 42;
  int parsed = 0, rejected = 0;
  const auto check = [&](const Bytes& file, const std::string& mutation) {
    (parses_or_fails_cleanly(file, mutation) ? parsed : rejected)++;
  };

  // Every truncation, and every header length up to past the end of the file, plus a few huge ones.
  for (size_t length = 0; length < seed.size(); ++length) {
    const Bytes truncated(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(length));
    check(truncated, "truncated to " + std::to_string(length));
  }
  std::vector<uint64_t> header_lengths = {uint64_t{100} << 20, (uint64_t{100} << 20) + 1, uint64_t{1} << 63,
                                          std::numeric_limits<uint64_t>::max()};
  for (uint64_t length = 0; length < seed.size() + 8; ++length) header_lengths.push_back(length);
  for (uint64_t length : header_lengths) {
    Bytes file = seed;
    std::memcpy(file.data(), &length, sizeof length);
    check(file, "header length " + std::to_string(length));
  }

  // Seeded random edits, weighted toward the header, where the parser's decisions are. The engine's raw
  // output (not a distribution) keeps the sequence the same on every standard library.
  std::mt19937_64 random(20240607);
  const auto below = [&](size_t n) { return static_cast<size_t>(random() % n); };
  constexpr std::string_view kJsonBytes = "{}[],:\"\\-.eE0123456789 \tunlf\x01\x80\xff";
  const auto random_byte = [&] {
    const auto any_byte = static_cast<uint8_t>(random());
    return below(2) ? static_cast<uint8_t>(kJsonBytes[below(kJsonBytes.size())]) : any_byte;
  };
  // Two edits in three land in the header (as long as the file still reaches that far).
  const auto random_position = [&](size_t size) {
    return std::min(below(3) ? 8 + below(seed_header_length) : below(size), size - 1);
  };
  // The digits of the header: editing them moves offsets, resizes shapes and renames dtypes (F32 -> F16),
  // which reaches the checks behind the JSON syntax.
  std::vector<size_t> header_digits;
  for (size_t k = 8; k < 8 + seed_header_length; ++k) {
    if (seed[k] >= '0' && seed[k] <= '9') header_digits.push_back(k);
  }
  constexpr int kRandomMutations = 20000;
  for (int round = 0; round < kRandomMutations; ++round) {
    Bytes file = seed;
    const size_t kind = below(5);
    for (size_t edit = 0, edits = 1 + below(4); edit < edits; ++edit) {
      if (kind == 0) {  // flip bits
        file[random_position(file.size())] ^= static_cast<uint8_t>(1 + below(255));
      } else if (kind == 1) {  // overwrite with a byte that means something to JSON, or any byte
        file[random_position(file.size())] = random_byte();
      } else if (kind == 2) {  // insert bytes, sometimes growing the header length to match
        const size_t at = random_position(file.size());
        const size_t count = 1 + below(8);
        for (size_t k = 0; k < count; ++k) {
          file.insert(file.begin() + static_cast<std::ptrdiff_t>(at), random_byte());
        }
        if (below(2) && at >= 8) file[0] = static_cast<uint8_t>(file[0] + count);
      } else if (kind == 3) {  // replace a digit of the header, or put one before it
        const size_t at = std::min(header_digits[below(header_digits.size())], file.size() - 1);
        const auto digit = static_cast<uint8_t>('0' + below(10));
        if (below(4)) {
          file[at] = digit;
        } else {
          file.insert(file.begin() + static_cast<std::ptrdiff_t>(at), digit);
        }
      } else {  // erase a span
        const size_t at = random_position(file.size());
        const size_t count = std::min(file.size() - at, 1 + below(16));
        const auto first = file.begin() + static_cast<std::ptrdiff_t>(at);
        file.erase(first, first + static_cast<std::ptrdiff_t>(count));
      }
    }
    check(file, "random mutation " + std::to_string(round));
  }
  // Both outcomes occur: the mutations reach past the first checks, and the parser rejects damage.
  EXPECT_GT(parsed, 100);
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace effnet
