// effnet_bench: training (or inference) speed of an EfficientNet on synthetic data: images/s, the median
// step time after warm-up, and the peak GPU memory. A training step is forward, cross-entropy, backward
// and an AdamP step, as in the recipe.
//
//   effnet_bench --model efficientnet_b4 --img-size 380 --batch 16 --steps 10 --device cuda
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "losses/losses.h"
#include "models/efficientnet.h"
#include "optim/adam.h"
#include "optim/param_groups.h"
#include "tensor/backend.h"
#include "tensor/ops.h"
#include "tensor/random.h"

#if defined(EFFNET_WITH_CUDA)
#include "tensor/cuda/allocator.h"
#endif

using namespace effnet;

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
  CLI11_PARSE(app, argc, argv);
  try {
    const Device device = Device::parse(device_name);
    EfficientNetOptions options = efficientnet_options(model_name);
    options.num_classes = classes;
    if (img_size == 0) img_size = options.resolution;
    manual_seed(0);
    EfficientNet model(options);
    model.to(device);
    model.train(mode == "train");
    AdamP optimizer(weight_decay_groups(model, 0.0), AdamPOptions{.lr = 1e-4});
    const Tensor images = randn({batch, 3, img_size, img_size}).to(device);
    const Tensor targets = from_vector(std::vector<double>(static_cast<size_t>(batch), 1.0), {batch},
                                       TensorOptions(kInt64, device));
    const Backend& kernels = backend(device, "effnet_bench");

    auto step = [&] {
      if (mode == "infer") {
        autograd::NoGradGuard no_grad;
        model.forward(images);
        return;
      }
      const Tensor loss = cross_entropy(model.forward(images), targets);
      loss.backward();
      optimizer.step();
      optimizer.zero_grad();
    };
    for (int i = 0; i < warmup; ++i) step();
    kernels.synchronize(device);
#if defined(EFFNET_WITH_CUDA)
    if (device.is_cuda()) cuda::reset_peak_memory_stats(device.index);
#endif
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      const auto start = std::chrono::steady_clock::now();
      step();
      kernels.synchronize(device);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    double peak_mib = 0;
#if defined(EFFNET_WITH_CUDA)
    if (device.is_cuda()) peak_mib = static_cast<double>(cuda::memory_stats(device.index).peak_allocated) / (1 << 20);
#endif
    std::printf("effnet_bench %s %s %lldx%lld batch %lld on %s: median step %.1f ms (min %.1f, max %.1f), %.1f images/s",
                model_name.c_str(), mode.c_str(), static_cast<long long>(img_size), static_cast<long long>(img_size),
                static_cast<long long>(batch), device.str().c_str(), median, ms.front(), ms.back(),
                1000.0 * static_cast<double>(batch) / median);
    if (device.is_cuda()) std::printf(", peak memory %.0f MiB", peak_mib);
    std::printf("\n");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "effnet_bench: %s\n", e.what());
    return 1;
  }
}
