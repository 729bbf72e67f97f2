// effnet_train: trains one EfficientNet (one fold) from a config file plus flag overrides.
// Today it prints the model summary (--summary); the training loop arrives with the training issue.
//
//   effnet_train --summary --model efficientnet_b4 --num-classes 1000 [--img-size 380x380]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "models/efficientnet.h"
#include "models/summary.h"

using namespace effnet;

namespace {

// "380x380" or "380" -> (380, 380).
std::pair<int64_t, int64_t> parse_size(const std::string& text) {
  const size_t x = text.find('x');
  try {
    size_t used = 0;
    const int64_t h = std::stoll(text.substr(0, x), &used);
    EFFNET_CHECK(used == (x == std::string::npos ? text.size() : x), "trailing characters");
    const int64_t w = x == std::string::npos ? h : std::stoll(text.substr(x + 1), &used);
    EFFNET_CHECK(x == std::string::npos || used == text.size() - x - 1, "trailing characters");
    EFFNET_CHECK(h > 0 && w > 0, "sizes must be positive");
    return {h, w};
  } catch (const std::exception&) {
    EFFNET_FAIL("--img-size: expected HxW (e.g. 380x380) or one number, got '", text, "'");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("effnet_train: train an EfficientNet classifier");
  bool summary = false;
  std::string model_name = "efficientnet_b4", img_size;
  int64_t num_classes = 18;
  app.add_flag("--summary", summary, "print the model's per-stage shapes, parameters and multiply-adds, then exit");
  app.add_option("--model", model_name, "efficientnet_b0..b7 or tf_efficientnet_b0..b7")->capture_default_str();
  app.add_option("--num-classes", num_classes, "classes of the classifier")->capture_default_str()->check(
      CLI::PositiveNumber);
  app.add_option("--img-size", img_size, "input size HxW (default: the model's resolution)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (!summary) {
      std::fprintf(stderr, "effnet_train: only --summary is available so far (the training loop is not built yet)\n");
      return 2;
    }
    EfficientNetOptions options = efficientnet_options(model_name);
    options.num_classes = num_classes;
    const auto [h, w] = img_size.empty() ? std::pair{options.resolution, options.resolution} : parse_size(img_size);
    const EfficientNet model(options);
    std::fputs(summarize(model, model_name, h, w).table().c_str(), stdout);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "effnet_train: %s\n", e.what());
    return 2;
  }
}
