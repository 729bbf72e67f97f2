// Storage: one block of bytes on one device, shared by every tensor that views it, and handed back to the
// allocator that made it when the last of them is gone.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "tensor/device.h"

namespace effnet {

class Storage {
 public:
  using Deleter = std::function<void(void*)>;

  Storage(void* data, size_t nbytes, Device device, Deleter deleter, bool pinned = false)
      : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)), pinned_(pinned) {}
  ~Storage() {
    if (deleter_) deleter_(data_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  // Page-locked host memory: the GPU can copy from it asynchronously.
  bool pinned() const { return pinned_; }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  Deleter deleter_;
  bool pinned_;
};

// Allocates through the device's allocator (the caching allocator on CUDA). `pinned` asks for page-locked
// host memory, which needs the CUDA backend.
std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device, bool pinned = false);

}  // namespace effnet
