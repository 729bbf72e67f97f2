// The data loader: worker threads decode and augment samples into batches, a bounded queue holds the
// ready ones, and the training thread takes them in order.
//
//   order      per epoch, a permutation of the samples drawn from (seed, epoch) (or weighted draws with
//              replacement for a class-balanced sampler); batch b holds positions [b B, (b + 1) B)
//   workers    N threads; worker w builds batches w, w + N, ...; each sample's randomness comes from
//              (seed, epoch, index), so batches are bit-identical for any N
//   memory     images are assembled in pinned host memory and copied to the GPU asynchronously on a
//              transfer that overlaps the model's compute; at most `prefetch` batches wait in the queue
//   cache      optional: decoded, deterministically transformed uint8 images kept up to a byte cap, so
//              epochs after the first skip JPEG decoding
//   bad files  an ImageError (missing, truncated, corrupt...) is reported once per file and the sample is
//              replaced by the next good one in a fixed order; the epoch goes on; bad_files() counts them
//   shutdown   the destructor (or an exception in a worker, which next() rethrows) stops every thread
//              without deadlock, whatever the queue holds
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "tensor/tensor.h"

namespace effnet::data {

struct LoaderOptions {
  int64_t batch_size = 32;
  int workers = 4;
  int prefetch = 2;  // ready batches waiting, at most
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  Device device = Device::cpu();
  size_t cache_bytes = 0;              // 0: no cache
  std::vector<double> sample_weights;  // non-empty: draw with replacement in proportion (balanced sampler)
};

struct Batch {
  Tensor images;  // [B, 3, H, W] float32 on the device
  Tensor labels;  // [B] int64 on the device
  std::vector<int64_t> indices;  // the samples used (after replacing bad files)
};

class DataLoader {
 public:
  DataLoader(std::vector<Sample> samples, TransformConfig transforms, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  void start_epoch(int64_t epoch);
  std::optional<Batch> next();  // nullopt at the end of the epoch
  int64_t batches_per_epoch() const;
  int64_t bad_files() const;
  std::vector<std::string> bad_file_messages() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Balanced-sampler weights: 1 / (count of the sample's class).
std::vector<double> class_balanced_weights(const std::vector<Sample>& samples);

}  // namespace effnet::data
