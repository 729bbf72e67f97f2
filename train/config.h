// The training configuration: one struct, filled from a TOML file (configs/*.toml), then from command-line
// flags, and saved fully resolved in the run directory. Every option is declared once, in config.cpp's
// table (TOML key, flag, help text, default, accepted values), which drives all three.
//
// data.fold is a string: "all" (every fold in turn, train/trainer.h) or a fold index. TOML accepts it as an
// integer (fold = 0, as older configs have it) or a string (fold = "all"); config.toml writes an index as
// an integer.
//
//   [data]     root, format (mask | folder), age_threshold, relabel, folds, fold, val_ratio, workers,
//              cache_mb, balanced_sampler
//   [augment]  crop (HxW), img_size (HxW resize first), rotation, hflip, brightness, contrast, saturation,
//              hue, grayscale, equalize
//   [model]    name, num_classes, head (single | multi: mask, gender and age heads), dropout, drop_path,
//              init_weights
//   [train]    epochs, batch_size, lr, optimizer (adamp | adam | adamw | sgd | sgdp | madgrad), momentum,
//              weight_decay, scheduler (constant | step | multistep | cosine | cosine_restarts), warmup_epochs,
//              step_size, milestones, gamma, t0, t_mult, min_lr, loss (e.g. "ce" or "ce:0.7+f1:0.3"),
//              class_weights (none | inverse), class_weight_power, class_weight_scale, label_smoothing,
//              focal_gamma, clip_grad, head_weights (multi head: "mask,gender,age", e.g. "1,1,1")
//   [run]      seed, device, out, predict
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace CLI {
class App;
}

namespace effnet::train {

struct TrainConfig {
  // data
  std::string data_root;
  std::string data_format = "mask";
  int64_t age_threshold = 60;
  std::string relabel;
  int64_t folds = 5;
  std::string fold = "0";  // "all" or 0 .. folds-1
  double val_ratio = 0;  // > 0: a ratio split instead of k-fold
  int64_t workers = 2;
  int64_t cache_mb = 0;
  bool balanced_sampler = false;
  // augment
  std::string crop;      // "HxW" or empty
  std::string img_size;  // "HxW" or empty
  double rotation = 0, hflip = 0;
  double brightness = 0, contrast = 0, saturation = 0, hue = 0;
  double grayscale = 0, equalize = 0;
  // model
  std::string model = "efficientnet_b0";
  int64_t num_classes = 18;
  std::string head = "single";
  double dropout = 0, drop_path = 0;
  std::string init_weights;
  // train
  int64_t epochs = 10;
  int64_t batch_size = 32;
  double lr = 1e-3;
  std::string optimizer = "adamp";
  double momentum = 0.9;
  double weight_decay = 0;
  std::string scheduler = "constant";
  int64_t warmup_epochs = 0;
  int64_t step_size = 10;
  std::string milestones;  // comma-separated epochs
  double gamma = 0.1;
  int64_t t0 = 10, t_mult = 1;
  double min_lr = 0;
  std::string loss = "ce";
  std::string class_weights = "none";
  double class_weight_power = 1, class_weight_scale = 1;
  double label_smoothing = 0;
  double focal_gamma = 2;
  double clip_grad = 0;  // 0: no clipping
  std::string head_weights = "1,1,1";
  std::string precision = "fp32";  // fp32, bf16 or fp16 (mixed precision, tensor/autocast.h)
  bool tf32 = false;
  bool channels_last = false;
  bool fused = false;
  // run
  uint64_t seed = 0;
  std::string device = "cpu";
  std::string out = "runs/run";
  bool predict = false;
};

// Reads a TOML file over the defaults; unknown keys and wrong types are errors naming the file and key.
void load_toml(const std::string& path, TrainConfig& config);
// The whole config as TOML, every key, in the table's order.
std::string to_toml(const TrainConfig& config);
// Registers one flag per option on `app` (the help shows each default), bound to `flags`.
void add_flags(CLI::App& app, TrainConfig& flags);
// After parsing: copies into `config` the options that were given on the command line, so that flags
// override the TOML file, which overrides the defaults.
void apply_given_flags(const CLI::App& app, const TrainConfig& flags, TrainConfig& config);
// Checks values and combinations; throws an Error listing what is accepted.
void validate(const TrainConfig& config);

// data.fold = "all"?
bool all_folds(const TrainConfig& config);
// data.fold as an index; throws naming data.fold unless it is a decimal integer.
int64_t fold_index(const TrainConfig& config);

// train.precision -> the autocast dtype: "fp32" -> nullopt, "bf16" -> bfloat16, "fp16" -> float16. Throws
// naming the option for anything else.
std::optional<DType> parse_precision(const std::string& text, const char* option);

// "384x320" or "384" -> {384, 320} / {384, 384}; "" -> {0, 0}. Throws naming the option.
std::pair<int64_t, int64_t> parse_size(const std::string& text, const char* option);

}  // namespace effnet::train
