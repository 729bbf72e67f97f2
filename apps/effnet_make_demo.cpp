// effnet_make_demo: writes the synthetic face-mask dataset (data/demo_data.h) in the competition's layout,
// so that training, validation and prediction run end to end without the real data.
//
//   effnet_make_demo ROOT [--people 300] [--size 128x96] [--eval-images 120] [--seed 0]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include "data/demo_data.h"
#include "tensor/error.h"
#include "train/config.h"

using namespace effnet;

int main(int argc, char** argv) {
  CLI::App app("effnet_make_demo: write a synthetic face-mask dataset in the competition's layout");
  std::string root, size = "128x96";
  data::DemoOptions options;
  app.add_option("ROOT", root, "the folder to create train/ and eval/ in (they must not exist)")->required();
  app.add_option("--people", options.people, "people in train/ (7 photos each)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--size", size, "photo size HxW (portrait, like the competition's 512x384)")
      ->capture_default_str();
  app.add_option("--eval-images", options.eval_images, "images in eval/")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", options.seed, "random seed: the same seed writes the same bytes")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    std::tie(options.height, options.width) = train::parse_size(size, "--size");
    const auto start = std::chrono::steady_clock::now();
    const int64_t images = data::write_demo_dataset(root, options);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("wrote %lld images (%lld people x 7 in %s/train, %lld in %s/eval) in %.1f s\n",
                static_cast<long long>(images), static_cast<long long>(options.people), root.c_str(),
                static_cast<long long>(options.eval_images), root.c_str(), seconds);
    return 0;
  } catch (const std::exception& e) {  // effnet::Error, or a file-system error
    std::fprintf(stderr, "effnet_make_demo: %s\n", e.what());
    return 2;
  }
}
