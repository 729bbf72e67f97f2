// effnet_bench: training (or inference) speed of an EfficientNet on synthetic data: images/s, the median
// step time after warm-up, the peak memory, and (training) the memory held for backward: what forward and
// the loss of one more step allocate and still hold when backward starts (the activations saved). A training
// step is forward, cross-entropy, backward and an AdamP step, as in the recipe. On CUDA a step is timed with
// device events around it on effnet's stream (the host waits after each step, so steps do not overlap); on
// the CPU with the host clock.
// --precision bf16 | fp16 is train.precision's mixed precision (fp16 with dynamic loss scaling), --tf32
// lets float32 use TF32 tensor cores, --channels-last runs the activations NHWC.
//
//   effnet_bench --model efficientnet_b4 --img-size 380 --batch 32 --precision bf16 --device cuda
//
// --max-batch first finds the largest batch whose two steps fit in memory (train/batch_fit.h: from --batch,
// guided by the peak memory of the trials, each said on stderr; the trials take cuDNN's heuristic
// algorithms), then times that batch. --memory-limit-mb caps the allocator, to stand for a smaller card or,
// on the CPU, to give the search a bound.
//
// --data ROOT trains end to end instead: the model's steps on the loader's batches (the recipe's transforms,
// below, at --crop; whole batches, moved to the device by the loader), timed by the host clock over --steps
// steps, with the share of that time the training thread waited for the next batch:
//
//   effnet_bench --model efficientnet_b4 --data ROOT --crop 384x320 --workers 8 --batch 32 --precision bf16
//
// --loader times the data loader alone (no model): images decoded and augmented per second with the
// recipe's transforms (center crop, rotation 10, horizontal flip, normalise) into CPU batches, over whole
// epochs of a competition-layout folder, once per worker count (scripts/bench_loader.sh compares PyTorch).
//
//   effnet_bench --loader --data ROOT --workers 1,2 --crop 384x320 --batch 32 --epochs 3
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "autograd/grad_mode.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "losses/losses.h"
#include "models/efficientnet.h"
#include "optim/adam.h"
#include "optim/loss_scaler.h"
#include "optim/param_groups.h"
#include "tensor/autocast.h"
#include "tensor/backend.h"
#include "tensor/math_mode.h"
#include "tensor/memory.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "train/batch_fit.h"
#include "train/config.h"

#if defined(EFFNET_WITH_CUDA)
#include "tensor/cuda/profiler.h"
#include "tensor/cuda/timing.h"
#endif

using namespace effnet;

namespace {

// The recipe's training transforms: center crop, rotation 10, horizontal flip, normalise.
data::TransformConfig recipe_transforms(const std::string& crop) {
  data::TransformConfig transforms;
  std::tie(transforms.crop_h, transforms.crop_w) = train::parse_size(crop, "--crop");
  transforms.rotation_degrees = 10;
  transforms.hflip = 0.5;
  return transforms;
}

// One line per worker count: "workers N: X images/s (...)", the format scripts/bench_loader.sh reads.
void bench_loader(const std::string& root, const std::vector<int>& workers, const std::string& crop,
                  int64_t batch, int epochs, int64_t cache_mb) {
  const data::Dataset dataset = data::load_mask_train(root);
  const data::TransformConfig transforms = recipe_transforms(crop);
  std::printf("effnet_bench --loader: %zu images in %s, crop %s, batch %lld, %d epochs, cache %lld MiB\n",
              dataset.samples.size(), root.c_str(), crop.c_str(), static_cast<long long>(batch), epochs,
              static_cast<long long>(cache_mb));
  for (int n : workers) {
    data::LoaderOptions options;
    options.batch_size = batch;
    options.workers = n;
    options.cache_bytes = static_cast<size_t>(cache_mb) << 20;
    options.report_bad_files = false;
    data::DataLoader loader(dataset.samples, transforms, options);
    int64_t images = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int epoch = 0; epoch < epochs; ++epoch) {
      loader.start_epoch(epoch);
      while (std::optional<data::Batch> b = loader.next()) images += b->images.size(0);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("workers %d: %.1f images/s (%lld images in %.2f s; %lld bad files replaced, %lld cache hits)\n",
                n, static_cast<double>(images) / seconds, static_cast<long long>(images), seconds,
                static_cast<long long>(loader.bad_files()), static_cast<long long>(loader.cache_hits()));
    std::fflush(stdout);
  }
}

// Training fed by the data loader, once per worker count: step_on(images, labels) on each of its batches
// (whole ones, over as many epochs as it takes), timed by the host clock. One line each, after `label`.
template <class Step>
void bench_end_to_end(const std::string& root, const std::vector<int>& workers, const std::string& crop,
                      int64_t batch, int64_t cache_mb, int warmup, int steps, Device device, Step&& step_on,
                      const std::string& label) {
  const data::Dataset dataset = data::load_mask_train(root);
  const Backend& kernels = backend(device, "effnet_bench");
  for (int n : workers) {
    data::LoaderOptions options;
    options.batch_size = batch;
    options.workers = n;
    options.drop_last = true;  // one shape: each new shape costs the GPU an algorithm search
    options.device = device;
    options.cache_bytes = static_cast<size_t>(cache_mb) << 20;
    options.report_bad_files = false;
    data::DataLoader loader(dataset.samples, recipe_transforms(crop), options);
    EFFNET_CHECK(loader.batches_per_epoch() > 0, "--data: ", dataset.samples.size(), " images in ", root,
                 " make no whole batch of ", batch);
    int64_t epoch = 0;
    double waiting = 0;  // seconds the training thread waited for the loader
    loader.start_epoch(epoch);
    auto next_batch = [&] {
      const auto start = std::chrono::steady_clock::now();
      std::optional<data::Batch> b = loader.next();
      if (!b) {
        loader.start_epoch(++epoch);
        b = loader.next();
      }
      waiting += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return std::move(*b);
    };
    for (int i = 0; i < warmup; ++i) {
      const data::Batch b = next_batch();
      step_on(b.images, b.labels);
    }
    kernels.synchronize(device);
    reset_peak_memory_stats(device);
    waiting = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      const data::Batch b = next_batch();
      step_on(b.images, b.labels);
    }
    kernels.synchronize(device);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s %s batch %lld on %s from %s, %d workers: %.1f ms a step over %d steps, %.0f%% of it waiting "
                "for the loader, %.1f images/s, peak memory %.0f MiB\n",
                label.c_str(), crop.c_str(), static_cast<long long>(batch), device.str().c_str(), root.c_str(), n,
                1000 * seconds / steps, steps, 100 * waiting / seconds, static_cast<double>(batch) * steps / seconds,
                static_cast<double>(memory_stats(device).peak_allocated) / (1 << 20));
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("effnet_bench: EfficientNet training or inference speed on synthetic data");
  std::string model_name = "efficientnet_b0", device_name = cuda_available() ? "cuda" : "cpu", mode = "train";
  int64_t img_size = 0, batch = 8, classes = 18;
  int steps = 10, warmup = 3;
  app.add_option("--model", model_name, "efficientnet_b0..b7 or tf_efficientnet_b0..b7")->capture_default_str();
  app.add_option("--img-size", img_size, "square input size (default: the model's resolution)");
  app.add_option("--batch", batch, "images per step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--num-classes", classes, "classes of the classifier")->capture_default_str();
  app.add_option("--steps", steps, "timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--mode", mode, "train or infer")->capture_default_str()->check(CLI::IsMember({"train", "infer"}));
  std::string precision = "fp32";
  bool tf32 = false;
  app.add_option("--precision", precision, "fp32, or mixed precision: bf16 or fp16 (with loss scaling)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_flag("--tf32", tf32, "float32 convolutions and matrix products may use TF32 tensor cores");
  bool channels_last = false;
  app.add_flag("--channels-last", channels_last, "activations channels-last (NHWC) from the stem on");
  bool fused = false;
  app.add_flag("--fused", fused, "fused kernels (batch norm + SiLU, the SE gate's backward)");
  double drop_path = 0.0;
  app.add_option("--drop-path", drop_path, "stochastic depth rate of the last block (timm's drop_path_rate)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  bool max_batch = false;
  int64_t batch_multiple = 8, memory_limit_mb = 0;
  app.add_flag("--max-batch", max_batch,
               "find the largest batch that fits (from --batch up, on the grid of --batch-multiple), then time it");
  app.add_option("--batch-multiple", batch_multiple, "--max-batch: batches tried are multiples of this")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--memory-limit-mb", memory_limit_mb,
                 "hold at most this much device memory (a smaller card; on the CPU, what bounds --max-batch)")
      ->check(CLI::NonNegativeNumber);
  bool loader_mode = false;
  std::string data_root, crop = "384x320";
  std::vector<int> workers{1, 2};
  int epochs = 3;
  int64_t cache_mb = 0;
  app.add_flag("--loader", loader_mode, "time the data loader instead of a model");
  app.add_option("--data", data_root,
                 "the competition layout's ROOT (ROOT/train/train.csv): with --loader, time the loader alone; "
                 "without, train on its batches end to end (--crop, --workers, --cache-mb)");
  app.add_option("--workers", workers, "--data: worker counts to time, e.g. 1,2")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--crop", crop, "--data: center crop HxW")->capture_default_str();
  app.add_option("--epochs", epochs, "--loader: timed epochs")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--cache-mb", cache_mb, "--data: decoded-image cache")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (loader_mode) {
      EFFNET_CHECK(!data_root.empty(), "--loader needs --data ROOT");
      bench_loader(data_root, workers, crop, batch, epochs, cache_mb);
      return 0;
    }
    const Device device = Device::parse(device_name);
    EfficientNetOptions options = efficientnet_options(model_name);
    options.num_classes = classes;
    options.channels_last = channels_last;
    options.fused = fused;
    options.drop_path = drop_path;
    if (img_size == 0) img_size = options.resolution;
    manual_seed(0);
    EfficientNet model(options);
    model.to(device);
    model.train(mode == "train");
    AdamP optimizer(weight_decay_groups(model, 0.0), AdamPOptions{.lr = 1e-4});
    const Backend& kernels = backend(device, "effnet_bench");
    const std::optional<DType> autocast_to = train::parse_precision(precision, "--precision");
    set_allow_tf32(tf32);
    std::optional<DynamicLossScaler> scaler;
    if (precision == "fp16") scaler.emplace();
    if (memory_limit_mb > 0) set_memory_limit(device, static_cast<size_t>(memory_limit_mb) << 20);

    // A training step, with `held` (when asked) set to the bytes that forward and the loss asked for and that
    // are still held when backward starts: the activations saved for backward, which set the peak memory.
    // Counted as requested, not as the allocator's rounded blocks: what any allocator would have to hold.
    auto step_on = [&](const Tensor& images, const Tensor& targets, size_t* held = nullptr) {
      const AutocastGuard autocast(autocast_to);
      if (mode == "infer") {
        autograd::NoGradGuard no_grad;
        model.forward(images);
        return;
      }
      const size_t before = held != nullptr ? memory_stats(device).requested : 0;
      const Tensor loss = cross_entropy(model.forward(images), targets);
      if (held != nullptr) *held = memory_stats(device).requested - before;
      backward_and_step(loss, optimizer, scaler ? &*scaler : nullptr);
      optimizer.zero_grad();
    };
    auto images_of = [&](int64_t n) { return randn({n, 3, img_size, img_size}).to(device); };
    auto targets_of = [&](int64_t n) {
      return from_vector(std::vector<double>(static_cast<size_t>(n), 1.0), {n}, TensorOptions(kInt64, device));
    };
    const std::string variant =
        precision + (tf32 ? "+tf32" : "") + (channels_last ? "+cl" : "") + (fused ? "+fused" : "");
    if (!data_root.empty()) {
      EFFNET_CHECK(!max_batch && mode == "train", "--data (end to end) times training at --batch; not with ",
                   max_batch ? "--max-batch" : "--mode infer");
      bench_end_to_end(data_root, workers, crop, batch, cache_mb, warmup, steps, device, step_on,
                       "effnet_bench " + variant + " " + model_name + " train");
      return 0;
    }
    if (max_batch) {
      const size_t capacity = memory_capacity(device);
      EFFNET_CHECK(capacity != 0, "--max-batch on ", device, " needs --memory-limit-mb: nothing else bounds its memory");
      // A batch fits when two steps run: the first at a new shape also chooses convolution algorithms, by
      // cuDNN's heuristics here (timing every candidate at every batch tried would cost minutes; the timed
      // batch below times them if asked, and runs the leanest one where a timed choice's workspace does not
      // fit). Each trial is said on stderr as it ends.
      const bool benchmark = cudnn_benchmark();
      set_cudnn_benchmark(false);
      const train::BatchFit fit = train::find_largest_batch(
          {.start = batch, .multiple = batch_multiple, .capacity = capacity}, [&](int64_t n) {
            optimizer.zero_grad();  // a trial that ran out of memory mid-backward left some; gone before the cache
            const std::optional<size_t> peak = train::peak_memory_of(device, [&] {
              const Tensor images = images_of(n), targets = targets_of(n);
              step_on(images, targets);
              step_on(images, targets);
            });
            std::fprintf(stderr, "effnet_bench --max-batch: batch %lld %s\n", static_cast<long long>(n),
                         peak ? ("fits, " + std::to_string(*peak >> 20) + " MiB").c_str() : "out of memory");
            return peak;
          });
      set_cudnn_benchmark(benchmark);
      std::printf("effnet_bench --max-batch: largest batch %lld in %.0f MiB%s (batch: peak held; %s)\n",
                  static_cast<long long>(fit.batch), static_cast<double>(capacity) / (1 << 20),
                  fit.exact ? "" : ", not exact: out of trials", fit.describe().c_str());
      std::fflush(stdout);  // kept should the timed run be cut short
      EFFNET_CHECK(fit.batch > 0, "--max-batch: not even one image of ", img_size, "x", img_size, " fits in ",
                   capacity >> 20, " MiB on ", device);
      batch = fit.batch;
    }
    const Tensor images = images_of(batch), targets = targets_of(batch);
    auto step = [&] { step_on(images, targets); };
    for (int i = 0; i < warmup; ++i) step();
    kernels.synchronize(device);
    reset_peak_memory_stats(device);
#if defined(EFFNET_WITH_CUDA)
    const char* profile_env = std::getenv("EFFNET_PROFILE");
    const bool profile = device.is_cuda() && profile_env != nullptr && std::string(profile_env) == "1";
    if (profile) cuda::set_profiling(true);  // the timed steps only
#endif
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
#if defined(EFFNET_WITH_CUDA)
      if (device.is_cuda()) {
        ms.push_back(cuda::device_milliseconds(device.index, step));
        continue;
      }
#endif
      const auto start = std::chrono::steady_clock::now();
      step();
      kernels.synchronize(device);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
#if defined(EFFNET_WITH_CUDA)
    if (profile) {
      cuda::set_profiling(false);
      std::printf("EFFNET_PROFILE=1: GPU time per kernel entry over the %d timed steps\n%s", steps,
                  cuda::profile_report(steps).c_str());
    }
#endif
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    const double peak_mib = static_cast<double>(memory_stats(device).peak_allocated) / (1 << 20);
    std::printf("effnet_bench %s %s %s %lldx%lld batch %lld on %s: median step %.1f ms (min %.1f, max %.1f), "
                "%.1f images/s",
                variant.c_str(), model_name.c_str(), mode.c_str(), static_cast<long long>(img_size),
                static_cast<long long>(img_size), static_cast<long long>(batch), device.str().c_str(), median, ms.front(), ms.back(),
                1000.0 * static_cast<double>(batch) / median);
    std::printf(", peak memory %.0f MiB", peak_mib);
    if (mode == "train") {
      size_t held = 0;
      step_on(images, targets, &held);
      std::printf(", held for backward %.0f MiB", static_cast<double>(held) / (1 << 20));
    }
    std::printf("\n");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "effnet_bench: %s\n", e.what());
    return 1;
  }
}
