// The threaded data loader (data/loader.h has the contract). One mutex guards the epoch, the map of ready
// batches and the consumer's position; two condition variables wake the workers (new epoch, window moved,
// stop) and the training thread (a batch or an error is ready).
//
//   epoch      a generation number plus an immutable plan (the order); start_epoch bumps the generation,
//              and a worker still on an older one drops what it was building at the next sample
//   window     worker w builds batches w, w + N, ...; it may hand in batch b only once b < consumed +
//              prefetch, so the batch the training thread waits for is always admitted (no deadlock)
//   errors     an exception while building batch b is stored as batch b: next() rethrows it when it reaches
//              b, so a failure surfaces at the same batch for any number of workers; the epoch stays
//              failed (next() throws again) until start_epoch
//   CUDA       each thread owns two pinned buffers used in turn; after queuing the device copies from one it
//              records an event, and it waits on that event before writing the buffer again
//   CPU        batches are views of pooled blocks that return to the pool when their last tensor is gone
#include "data/loader.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "data/image.h"
#include "tensor/ops.h"
#include "tensor/philox.h"

#if defined(EFFNET_WITH_CUDA)
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#endif

namespace effnet::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The random numbers of one epoch's order: a Philox stream keyed by (seed, epoch).
class OrderRandom {
 public:
  OrderRandom(uint64_t seed, int64_t epoch)
      : key_(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch))) {}

  uint64_t bits() {
    const philox::Words r = philox::generate(key_, counter_++);
    return (static_cast<uint64_t>(r.w[0]) << 32) | r.w[1];
  }
  double uniform() { return static_cast<double>(bits() >> 11) * (1.0 / 9007199254740992.0); }
  uint64_t below(uint64_t n) {  // unbiased: rejects the top partial block of 2^64
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = bits();
    while (x >= limit) x = bits();
    return x % n;
  }

 private:
  uint64_t key_, counter_ = 0;
};

// The point of the device stream after one batch's copies. CPU-only builds never reach record().
class CopyFence {
 public:
  CopyFence() = default;
  CopyFence(const CopyFence&) = delete;
  CopyFence& operator=(const CopyFence&) = delete;
  ~CopyFence() {
#if defined(EFFNET_WITH_CUDA)
    if (event_ != nullptr) (void)cudaEventDestroy(event_);  // pending work keeps it alive until done
#endif
  }

  void record(Device device) {
#if defined(EFFNET_WITH_CUDA)
    cuda::DeviceGuard guard(device.index);
    if (event_ == nullptr) EFFNET_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    EFFNET_CUDA_CHECK(cudaEventRecord(event_, cuda::context(device.index).stream));
#else
    EFFNET_FAIL("data loader: effnet was built without CUDA, cannot copy a batch to ", device);
#endif
  }

  void wait() {
#if defined(EFFNET_WITH_CUDA)
    if (event_ != nullptr) EFFNET_CUDA_CHECK(cudaEventSynchronize(event_));
#endif
  }

 private:
#if defined(EFFNET_WITH_CUDA)
  cudaEvent_t event_ = nullptr;
#endif
};

// One thread's page-locked batch buffers (CUDA devices), used in turn. A buffer is handed out again only
// after the copies queued from it have run, so a batch never changes under a copy still in flight.
class PinnedRing {
 public:
  struct Slot {
    Tensor images, labels;  // [B, 3, H, W] float32 and [B] int64, pinned
    CopyFence copied;
  };

  Slot& acquire(int64_t batch, int64_t height, int64_t width) {
    Slot& slot = slots_[next_];
    next_ = 1 - next_;
    slot.copied.wait();
    if (!slot.images.defined()) {
      TensorOptions pinned(kFloat32);
      pinned.pinned = true;
      slot.images = empty({batch, 3, height, width}, pinned);
      pinned.dtype = kInt64;
      slot.labels = empty({batch}, pinned);
    }
    return slot;
  }

 private:
  std::array<Slot, 2> slots_;
  int next_ = 0;
};

// Host memory for CPU batches, reused: a handed-out batch's storage goes back to the free list when the
// last tensor viewing it is gone (in whichever thread), so a steady state allocates (and page-faults) no new
// batch memory. At most `keep` free blocks are kept. Outlives the loader while batches are alive.
class HostBatchPool : public std::enable_shared_from_this<HostBatchPool> {
 public:
  HostBatchPool(size_t block_bytes, size_t keep) : block_bytes_(block_bytes), keep_(keep) {}

  Tensor take(const Shape& shape) {
    std::shared_ptr<Storage> block;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        block = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (block == nullptr) block = allocate_storage(block_bytes_, Device::cpu());
    auto self = shared_from_this();
    auto handle = std::make_shared<Storage>(block->data(), block->nbytes(), Device::cpu(),
                                            [self, block](void*) { self->give_back(block); });
    return make_tensor(std::move(handle), shape, contiguous_strides(shape), 0, kFloat32);
  }

 private:
  void give_back(const std::shared_ptr<Storage>& block) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < keep_) free_.push_back(block);
  }

  std::mutex mutex_;
  std::vector<std::shared_ptr<Storage>> free_;
  size_t block_bytes_, keep_;
};

struct Epoch {
  int64_t number = 0;
  std::vector<int64_t> order;  // the sample index at each position
  int64_t batches = 0;
  int64_t first = 0;  // the batch it starts (or resumes) at
};

struct Ready {
  Batch batch;
  std::exception_ptr error;  // set: building this batch failed
};

}  // namespace

struct DataLoader::State {
  std::vector<Sample> samples;
  TransformConfig transforms;
  LoaderOptions options;
  int64_t height = 0, width = 0;  // every sample's size after the deterministic transforms
  std::string size_reference;     // the file that set it

  // Bad files: a flag per sample (read without the lock) and one message per path.
  std::vector<std::atomic<bool>> bad;
  mutable std::mutex bad_mutex;
  std::map<std::string, std::string> bad_messages;

  // Cache: first come, first kept, up to options.cache_bytes.
  mutable std::mutex cache_mutex;
  std::unordered_map<int64_t, std::shared_ptr<const Image>> cache;
  size_t cache_used = 0;
  std::atomic<int64_t> cache_hits{0};

  // Epoch and queue, under `mutex`.
  std::mutex mutex;
  std::condition_variable work_cv, ready_cv;
  std::shared_ptr<const Epoch> epoch;
  std::atomic<uint64_t> generation{0};  // written under the lock; workers poll it between samples
  std::atomic<bool> stop{false};
  int64_t consumed = 0;  // batches next() has returned this epoch
  std::map<int64_t, Ready> ready;
  std::exception_ptr fatal;  // a worker failed outside any batch

  std::vector<std::thread> threads;
  PinnedRing own_ring;                  // the training thread's, when workers == 0
  std::shared_ptr<HostBatchPool> host;  // CPU batches

  State(std::vector<Sample> s, TransformConfig t, LoaderOptions o)
      : samples(std::move(s)), transforms(std::move(t)), options(std::move(o)), bad(samples.size()) {}

  int64_t size() const { return static_cast<int64_t>(samples.size()); }
  bool cancelled(uint64_t gen) const { return stop.load() || generation.load() != gen; }

  int64_t batches_per_epoch() const {
    const int64_t n = size(), b = options.batch_size;
    return options.drop_last ? n / b : (n + b - 1) / b;
  }

  std::shared_ptr<const Image> cache_find(int64_t index) {
    if (options.cache_bytes == 0) return nullptr;
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(index);
    if (it == cache.end()) return nullptr;
    ++cache_hits;
    return it->second;
  }

  void cache_insert(int64_t index, const std::shared_ptr<const Image>& image) {
    if (options.cache_bytes == 0) return;
    std::lock_guard<std::mutex> lock(cache_mutex);
    const size_t bytes = image->pixels.size();
    if (cache_used + bytes > options.cache_bytes || cache.count(index) != 0) return;
    cache.emplace(index, image);
    cache_used += bytes;
  }

  void mark_bad(int64_t index, const std::string& message) {
    std::lock_guard<std::mutex> lock(bad_mutex);
    bad[static_cast<size_t>(index)] = true;
    if (!bad_messages.emplace(samples[static_cast<size_t>(index)].path, message).second) return;
    if (options.report_bad_files) std::fprintf(stderr, "effnet: data loader: skipping %s\n", message.c_str());
  }

  // The deterministically transformed image of sample `index`, or, when its file does not decode, of the
  // first sample after it (cyclically) that does. Returns the sample used.
  std::pair<int64_t, std::shared_ptr<const Image>> load(int64_t index) {
    const int64_t n = size();
    for (int64_t step = 0; step < n; ++step) {
      const int64_t i = (index + step) % n;
      if (bad[static_cast<size_t>(i)]) continue;
      if (auto cached = cache_find(i)) return {i, cached};
      Image decoded;
      try {
        decoded = decode_image(samples[static_cast<size_t>(i)].path);
      } catch (const ImageError& e) {
        mark_bad(i, e.what());
        continue;
      }
      auto image = std::make_shared<const Image>(apply_deterministic(decoded, transforms));
      cache_insert(i, image);
      return {i, image};
    }
    std::lock_guard<std::mutex> lock(bad_mutex);
    EFFNET_FAIL("data loader: none of the ", n, " images decodes (the first problem: ",
                bad_messages.empty() ? std::string("?") : bad_messages.begin()->second, ")");
  }

  void check_size(int64_t index, const Image& image) const {
    EFFNET_CHECK(image.height == height && image.width == width, "data loader: ",
                 samples[static_cast<size_t>(index)].path, " is ", image.height, "x", image.width,
                 " (HxW) after the deterministic transforms, but ", size_reference, " is ", height, "x", width,
                 ": a batch needs one size; set a center crop or a resize");
  }

  // Batch b of `plan`, or nullopt when the epoch was abandoned (generation moved on) while building it.
  std::optional<Batch> build(const Epoch& plan, int64_t b, uint64_t gen, PinnedRing& ring) {
    const int64_t begin = b * options.batch_size;
    const int64_t count = std::min(options.batch_size, size() - begin);
    const Device device = options.device;
    Tensor images, labels;
    PinnedRing::Slot* slot = nullptr;
    if (device.is_cpu()) {
      images = host->take({count, 3, height, width});
      labels = empty({count}, kInt64);
    } else {
      slot = &ring.acquire(options.batch_size, height, width);
      images = slot->images.slice(0, 0, count);
      labels = slot->labels.slice(0, 0, count);
    }
    float* out = images.data<float>();
    int64_t* out_labels = labels.data<int64_t>();
    const int64_t plane = 3 * height * width;
    Batch batch;
    batch.indices.reserve(static_cast<size_t>(count));
    for (int64_t k = 0; k < count; ++k) {
      if (cancelled(gen)) return std::nullopt;
      const int64_t position = begin + k;
      auto [index, image] = load(plan.order[static_cast<size_t>(position)]);
      check_size(index, *image);
      if (transforms.has_random()) {
        SampleRandom random(options.seed, static_cast<uint64_t>(plan.number), static_cast<uint64_t>(position));
        const Image augmented = apply_random(*image, transforms, random);
        check_size(index, augmented);
        to_normalized_chw(augmented, transforms, out + k * plane);
      } else {
        to_normalized_chw(*image, transforms, out + k * plane);
      }
      out_labels[k] = samples[static_cast<size_t>(index)].label;
      batch.indices.push_back(index);
    }
    if (device.is_cpu()) {
      batch.images = images;
      batch.labels = labels;
    } else {
      batch.images = empty(images.shape(), TensorOptions(kFloat32, device));
      batch.labels = empty(labels.shape(), TensorOptions(kInt64, device));
      batch.images.copy_(images);  // asynchronous: queued on the device's stream
      batch.labels.copy_(labels);
      slot->copied.record(device);
    }
    return batch;
  }

  void worker(int w) {
    try {
      PinnedRing ring;
      uint64_t seen = 0;
      for (;;) {
        std::shared_ptr<const Epoch> plan;
        {
          std::unique_lock<std::mutex> lock(mutex);
          work_cv.wait(lock, [&] { return stop.load() || generation.load() != seen; });
          if (stop) return;
          seen = generation;
          plan = epoch;
        }
        const int64_t n = options.workers;
        int64_t b = w;  // this worker's first batch: the smallest b >= plan->first with b % n == w
        if (plan->first > w) b += (plan->first - w + n - 1) / n * n;
        for (; b < plan->batches; b += n) {
          Ready item;
          try {
            std::optional<Batch> batch = build(*plan, b, seen, ring);
            if (!batch) break;
            item.batch = std::move(*batch);
          } catch (...) {
            item.error = std::current_exception();
          }
          const bool failed = item.error != nullptr;
          std::unique_lock<std::mutex> lock(mutex);
          work_cv.wait(lock, [&] { return cancelled(seen) || b < consumed + options.prefetch; });
          if (cancelled(seen)) break;
          ready.emplace(b, std::move(item));
          ready_cv.notify_all();
          if (failed) break;  // the epoch ends at this batch
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      fatal = std::current_exception();
      ready_cv.notify_all();
    }
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    work_cv.notify_all();
    for (std::thread& t : threads) t.join();
    threads.clear();
  }
};

DataLoader::DataLoader(std::vector<Sample> samples, TransformConfig transforms, LoaderOptions options)
    : state_(std::make_unique<State>(std::move(samples), std::move(transforms), std::move(options))) {
  State& s = *state_;
  const LoaderOptions& o = s.options;
  EFFNET_CHECK(!s.samples.empty(), "data loader: no samples");
  s.transforms.validate();
  EFFNET_CHECK(o.batch_size >= 1, "data loader: batch_size must be at least 1, got ", o.batch_size);
  EFFNET_CHECK(o.workers >= 0, "data loader: workers must be 0 or more, got ", o.workers);
  EFFNET_CHECK(o.prefetch >= 1, "data loader: prefetch must be at least 1, got ", o.prefetch);
  if (o.device.is_cuda())
    EFFNET_CHECK(cuda_available() && o.device.index < cuda_device_count(), "data loader: device ", o.device,
                 " is not available");
  if (!o.sample_weights.empty()) {
    EFFNET_CHECK(o.sample_weights.size() == s.samples.size(), "data loader: ", o.sample_weights.size(),
                 " sample weights for ", s.samples.size(), " samples");
    double total = 0;
    for (double w : o.sample_weights) {
      EFFNET_CHECK(std::isfinite(w) && w >= 0, "data loader: sample weights must be finite and >= 0, got ", w);
      total += w;
    }
    EFFNET_CHECK(total > 0, "data loader: the sample weights sum to 0");
  }
  // The first sample that decodes sets the batch's image size.
  auto [index, image] = s.load(0);
  s.height = image->height;
  s.width = image->width;
  s.size_reference = s.samples[static_cast<size_t>(index)].path;
  if (o.device.is_cpu()) {
    const size_t bytes = static_cast<size_t>(o.batch_size * 3 * s.height * s.width) * sizeof(float);
    s.host = std::make_shared<HostBatchPool>(bytes, static_cast<size_t>(o.workers + o.prefetch + 2));
  }
  try {
    for (int w = 0; w < o.workers; ++w) s.threads.emplace_back([this, w] { state_->worker(w); });
  } catch (...) {  // no thread left running when a later one cannot start
    s.shutdown();
    throw;
  }
}

DataLoader::~DataLoader() { state_->shutdown(); }

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  State& s = *state_;
  EFFNET_CHECK(epoch >= 0, "data loader: start_epoch(", epoch, "): epochs count from 0");
  EFFNET_CHECK(first_batch >= 0 && first_batch <= s.batches_per_epoch(),
               "data loader: start_epoch: first batch ", first_batch, " outside [0, ", s.batches_per_epoch(), "]");
  auto plan = std::make_shared<Epoch>();
  plan->number = epoch;
  plan->batches = s.batches_per_epoch();
  plan->first = first_batch;
  const int64_t n = s.size();
  plan->order.resize(static_cast<size_t>(n));
  OrderRandom random(s.options.seed, epoch);
  if (!s.options.sample_weights.empty()) {
    std::vector<double> cumulative(static_cast<size_t>(n));
    double total = 0;
    for (size_t i = 0; i < cumulative.size(); ++i) cumulative[i] = total += s.options.sample_weights[i];
    for (int64_t& index : plan->order) {
      const double u = random.uniform() * total;
      const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
      index = std::min<int64_t>(it - cumulative.begin(), n - 1);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) plan->order[static_cast<size_t>(i)] = i;
    if (s.options.shuffle) {  // Fisher-Yates
      for (int64_t i = n - 1; i > 0; --i)
        std::swap(plan->order[static_cast<size_t>(i)],
                  plan->order[random.below(static_cast<uint64_t>(i + 1))]);
    }
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.epoch = std::move(plan);
    s.generation = s.generation + 1;
    s.consumed = first_batch;
    s.ready.clear();
  }
  s.work_cv.notify_all();
}

std::optional<Batch> DataLoader::next() {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  EFFNET_CHECK(s.epoch != nullptr, "data loader: next() called before start_epoch()");
  if (s.consumed >= s.epoch->batches) return std::nullopt;
  if (s.options.workers == 0) {
    std::optional<Batch> batch = s.build(*s.epoch, s.consumed, s.generation, s.own_ring);
    ++s.consumed;
    return batch;
  }
  s.ready_cv.wait(lock, [&] { return s.fatal != nullptr || s.ready.count(s.consumed) != 0; });
  if (s.fatal) std::rethrow_exception(s.fatal);
  auto it = s.ready.find(s.consumed);
  if (it->second.error) std::rethrow_exception(it->second.error);  // kept: the epoch stays failed
  Batch batch = std::move(it->second.batch);
  s.ready.erase(it);
  ++s.consumed;
  lock.unlock();
  s.work_cv.notify_all();
  return batch;
}

int64_t DataLoader::batches_per_epoch() const { return state_->batches_per_epoch(); }

int64_t DataLoader::bad_files() const {
  std::lock_guard<std::mutex> lock(state_->bad_mutex);
  return static_cast<int64_t>(state_->bad_messages.size());
}

std::vector<std::string> DataLoader::bad_file_messages() const {
  std::lock_guard<std::mutex> lock(state_->bad_mutex);
  std::vector<std::string> messages;
  for (const auto& [path, message] : state_->bad_messages) messages.push_back(message);
  return messages;
}

int64_t DataLoader::cache_hits() const { return state_->cache_hits; }

size_t DataLoader::cache_bytes_used() const {
  std::lock_guard<std::mutex> lock(state_->cache_mutex);
  return state_->cache_used;
}

std::vector<double> class_balanced_weights(const std::vector<Sample>& samples) {
  std::map<int64_t, int64_t> counts;
  for (const Sample& sample : samples) {
    EFFNET_CHECK(sample.label >= 0, "class_balanced_weights: ", sample.path, " has no label (", sample.label,
                 ")");
    ++counts[sample.label];
  }
  std::vector<double> weights;
  weights.reserve(samples.size());
  for (const Sample& sample : samples) weights.push_back(1.0 / static_cast<double>(counts[sample.label]));
  return weights;
}

}  // namespace effnet::data
