// Where a tensor lives: the CPU or one CUDA device. The device travels with each tensor; there is no
// global "mode" (an op runs where its inputs are).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace effnet {

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::CPU, 0}; }
  static constexpr Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  // "cpu", "cuda", "cuda:1"; throws effnet::Error on anything else.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const;
  friend bool operator==(const Device&, const Device&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

// True when effnet was built with the CUDA backend.
bool cuda_compiled();
// True when effnet was built with CUDA and at least one device is usable.
bool cuda_available();
int cuda_device_count();

}  // namespace effnet
