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
//
// Details of this implementation (data/loader.cpp):
//   - the random stream of a sample is SampleRandom(seed, epoch, position in the epoch's order), so a sample
//     drawn twice by the weighted sampler is augmented twice, differently
//   - the first sample that decodes sets the image size; a sample of another size after the deterministic
//     transforms is an Error naming both files and sizes (set a crop or a resize), rethrown by next()
//   - an exception while building batch b is rethrown by next() when it reaches batch b (the same batch for
//     any number of workers), and again on every later call, until start_epoch
//   - a replaced sample takes the next index, cyclically, whose file decodes; when none does, an Error
//   - CUDA: each worker assembles batches in two page-locked buffers used in turn, queues the copies to
//     the device on the device's stream (in order with the model's kernels: the training thread never
//     waits for a copy, though on that one stream a copy does not run alongside a kernel) and records an
//     event, which it waits on before writing that buffer again. Ready batches hold device tensors: about
//     prefetch + workers + 1 batches in device memory, 2 x workers in pinned memory
//   - CPU: a batch's memory is reused once the caller has dropped every tensor viewing it (no page faults
//     for fresh memory in the steady state); a batch kept is never overwritten
//   - workers = 0 builds each batch in next(), on the calling thread (for debugging)
//   - the DataLoader's own methods are called from one thread (the training loop)
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
  bool report_bad_files = true;        // also print each bad file's message to stderr, once
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

  // first_batch > 0 resumes an epoch there: the batches before it are not built.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  std::optional<Batch> next();  // nullopt at the end of the epoch
  int64_t batches_per_epoch() const;
  int64_t bad_files() const;
  std::vector<std::string> bad_file_messages() const;  // one per bad file, sorted by path
  int64_t cache_hits() const;       // samples served from the cache so far
  size_t cache_bytes_used() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Balanced-sampler weights: 1 / (count of the sample's class).
std::vector<double> class_balanced_weights(const std::vector<Sample>& samples);

}  // namespace effnet::data
