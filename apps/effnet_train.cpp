// effnet_train: trains one EfficientNet (one fold, or every fold in turn with --fold all) from a TOML
// config plus flag overrides, into a run directory (train/trainer.h lists what it holds).
//
//   effnet_train --config configs/demo.toml --data demo_data --out runs/demo
//   effnet_train --config configs/demo.toml --data demo_data --folds 5 --fold all --out runs/demo_cv
//   effnet_train --resume runs/demo
//   effnet_train --summary --model efficientnet_b4 --num-classes 1000 [--img-size 380x380]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "models/efficientnet.h"
#include "models/summary.h"
#include "train/config.h"
#include "train/trainer.h"

using namespace effnet;

int main(int argc, char** argv) {
  CLI::App app("effnet_train: train an EfficientNet classifier (flags override the --config file)");
  std::string config_path, resume_dir;
  bool summary = false;
  train::TrainConfig flags;
  app.add_option("--config", config_path, "TOML configuration (configs/*.toml)")->check(CLI::ExistingFile);
  app.add_option("--resume", resume_dir, "continue the run in this directory exactly where it stopped")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--summary", summary, "print the model's per-stage shapes, parameters and multiply-adds, then exit");
  train::add_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  try {
    train::TrainConfig config;
    if (!config_path.empty()) train::load_toml(config_path, config);
    train::apply_given_flags(app, flags, config);
    if (summary) {
      const EfficientNetOptions options = train::model_options(config);
      auto [h, w] = train::parse_size(config.img_size.empty() ? config.crop : config.img_size, "--img-size");
      if (h == 0) h = w = options.resolution;
      const EfficientNet model(options);
      std::fputs(summarize(model, config.model, h, w).table().c_str(), stdout);
      return 0;
    }
    train::RunOptions run;
    run.resume_dir = resume_dir;
    return train::run_training(config, run);
  } catch (const std::exception& e) {  // effnet::Error, or a file-system or library error
    std::fprintf(stderr, "effnet_train: %s\n", e.what());
    return 2;
  }
}
