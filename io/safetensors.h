// safetensors: the weight format of timm and Hugging Face, read and written without any library.
//
//   [8 bytes]  N, the header's length, little-endian u64
//   [N bytes]  a JSON object: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//              "__metadata__": {"key": "value", ...}}   (offsets relative to the byte after the header)
//   [rest]     the raw little-endian data of every tensor, row-major
//
// Reading validates everything (header size, JSON syntax, dtype names, shapes, offsets inside the file and
// consistent with dtype x shape, no overlaps, no duplicate names) and throws effnet::Error naming the file
// and the problem: a corrupt or truncated file is an error, never a crash. F32, F64 and I64 load as
// float32, float64 and int64 CPU tensors; F16 and BF16 are converted to float32 on load (effnet computes
// in float32 and keeps half precision for activations only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace effnet::safetensors {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct File {
  NamedTensors tensors;  // in the order of their data in the file
  std::map<std::string, std::string> metadata;

  // The tensor called `name`, or an undefined tensor.
  Tensor find(const std::string& name) const;
};

// Parses a whole file held in memory; `source` names it in error messages.
File parse(const uint8_t* data, size_t size, const std::string& source);
File load(const std::string& path);

// Writes float32, float64 and int64 tensors (from any device, any layout) as F32, F64 and I64, to a
// temporary file that is renamed over `path` once complete: a crash never leaves a half-written file.
void save(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata = {});

}  // namespace effnet::safetensors
