#include "train/config.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <variant>

#include "data/dataset.h"
#include "losses/multi_head.h"
#include "tensor/error.h"

namespace effnet::train {

namespace {

using Member = std::variant<std::string TrainConfig::*, int64_t TrainConfig::*, double TrainConfig::*,
                            bool TrainConfig::*, uint64_t TrainConfig::*>;

struct Option {
  const char* section;
  const char* key;
  const char* flag;
  Member member;
  const char* help;
  std::vector<std::string> choices = {};  // strings only; empty = free text
  bool integer_or_string = false;         // strings only: TOML may give an integer (data.fold = 0)
};

// The one list of options: TOML key, flag, help. Order = the order of config.toml.
const std::vector<Option>& options() {
  static const std::vector<Option> table = {
      {"data", "root", "--data", &TrainConfig::data_root, "dataset root folder"},
      {"data", "format", "--data-format", &TrainConfig::data_format, "dataset layout", {"mask", "folder"}},
      {"data", "age_threshold", "--age-threshold", &TrainConfig::age_threshold, "first age of the oldest band"},
      {"data", "relabel", "--relabel", &TrainConfig::relabel, "relabel CSV (path,field,value) applied on load"},
      {"data", "folds", "--folds", &TrainConfig::folds, "k of the person-wise stratified k-fold split"},
      {"data", "fold", "--fold", &TrainConfig::fold, "validation fold, 0 .. folds-1, or all (every fold in turn)",
       {}, true},
      {"data", "val_ratio", "--val-ratio", &TrainConfig::val_ratio, "> 0: validate on this share of people instead"},
      {"data", "workers", "--workers", &TrainConfig::workers, "data-loader threads"},
      {"data", "cache_mb", "--cache-mb", &TrainConfig::cache_mb, "cache of decoded images, MiB (0: none)"},
      {"data", "balanced_sampler", "--balanced-sampler", &TrainConfig::balanced_sampler,
       "draw training samples class-balanced"},
      {"augment", "crop", "--crop", &TrainConfig::crop, "center crop HxW (e.g. 384x320)"},
      {"augment", "img_size", "--img-size", &TrainConfig::img_size, "resize to HxW before cropping"},
      {"augment", "rotation", "--rotation", &TrainConfig::rotation, "random rotation, +- degrees"},
      {"augment", "hflip", "--hflip", &TrainConfig::hflip, "horizontal flip probability"},
      {"augment", "brightness", "--brightness", &TrainConfig::brightness, "colour jitter: brightness"},
      {"augment", "contrast", "--contrast", &TrainConfig::contrast, "colour jitter: contrast"},
      {"augment", "saturation", "--saturation", &TrainConfig::saturation, "colour jitter: saturation"},
      {"augment", "hue", "--hue", &TrainConfig::hue, "colour jitter: hue (<= 0.5)"},
      {"augment", "grayscale", "--grayscale", &TrainConfig::grayscale, "random grayscale probability"},
      {"augment", "equalize", "--equalize", &TrainConfig::equalize, "histogram equalisation probability"},
      {"model", "name", "--model", &TrainConfig::model, "efficientnet_b0..b7 or tf_efficientnet_b0..b7"},
      {"model", "num_classes", "--num-classes", &TrainConfig::num_classes, "classes of the classifier"},
      {"model", "head", "--head", &TrainConfig::head,
       "single: one classifier; multi: classifier_mask, classifier_gender, classifier_age (18 mask classes)",
       {"single", "multi"}},
      {"model", "dropout", "--dropout", &TrainConfig::dropout, "dropout before the classifier"},
      {"model", "drop_path", "--drop-path", &TrainConfig::drop_path, "stochastic depth rate of the last block"},
      {"model", "init_weights", "--init-weights", &TrainConfig::init_weights,
       "start from these weights (.safetensors); a classifier of another shape is skipped"},
      {"train", "epochs", "--epochs", &TrainConfig::epochs, "epochs"},
      {"train", "batch_size", "--batch-size", &TrainConfig::batch_size, "images per step"},
      {"train", "lr", "--lr", &TrainConfig::lr, "learning rate"},
      {"train", "optimizer", "--optimizer", &TrainConfig::optimizer, "optimizer",
       {"adamp", "adam", "adamw", "sgd", "sgdp", "madgrad"}},
      {"train", "momentum", "--momentum", &TrainConfig::momentum, "momentum (sgd, sgdp, madgrad)"},
      {"train", "weight_decay", "--weight-decay", &TrainConfig::weight_decay,
       "weight decay (not on batch norm or biases)"},
      {"train", "scheduler", "--scheduler", &TrainConfig::scheduler, "learning-rate schedule",
       {"constant", "step", "multistep", "cosine", "cosine_restarts"}},
      {"train", "warmup_epochs", "--warmup-epochs", &TrainConfig::warmup_epochs, "linear warmup epochs"},
      {"train", "step_size", "--step-size", &TrainConfig::step_size, "step: epochs between decays"},
      {"train", "milestones", "--milestones", &TrainConfig::milestones, "multistep: epochs, comma-separated"},
      {"train", "gamma", "--gamma", &TrainConfig::gamma, "step, multistep: decay factor"},
      {"train", "t0", "--t0", &TrainConfig::t0, "cosine_restarts: epochs of the first cycle"},
      {"train", "t_mult", "--t-mult", &TrainConfig::t_mult, "cosine_restarts: cycle growth"},
      {"train", "min_lr", "--min-lr", &TrainConfig::min_lr, "cosine schedules: lowest lr"},
      {"train", "loss", "--loss", &TrainConfig::loss, "loss, or a weighted sum such as ce:0.7+f1:0.3 (ce, focal, f1)"},
      {"train", "class_weights", "--class-weights", &TrainConfig::class_weights,
       "class weights for ce / focal", {"none", "inverse"}},
      {"train", "class_weight_power", "--class-weight-power", &TrainConfig::class_weight_power,
       "inverse: w_c = (N / (C n_c))^power x scale"},
      {"train", "class_weight_scale", "--class-weight-scale", &TrainConfig::class_weight_scale,
       "inverse: the scale"},
      {"train", "label_smoothing", "--label-smoothing", &TrainConfig::label_smoothing, "label smoothing (ce)"},
      {"train", "focal_gamma", "--focal-gamma", &TrainConfig::focal_gamma, "focal loss gamma"},
      {"train", "clip_grad", "--clip-grad", &TrainConfig::clip_grad, "clip the gradient's global norm (0: off)"},
      {"train", "head_weights", "--head-weights", &TrainConfig::head_weights,
       "multi head: loss weights of the mask, gender and age heads"},
      {"train", "precision", "--precision", &TrainConfig::precision,
       "fp32, or mixed precision: bf16 or fp16 activations and convolutions with float32 weights, batch-norm "
       "statistics, loss and optimizer (fp16 with dynamic loss scaling)",
       {"fp32", "bf16", "fp16"}},
      {"train", "tf32", "--tf32", &TrainConfig::tf32,
       "let float32 convolutions and matrix products use TF32 tensor cores (CUDA; about 1e-3 relative error)"},
      {"train", "channels_last", "--channels-last", &TrainConfig::channels_last,
       "run the network's activations channels-last (NHWC), the layout of cuDNN's fast 16-bit kernels"},
      {"train", "fused", "--fused",  &TrainConfig::fused,
       "fused kernels (batch norm + SiLU as one op, one activation less kept for the backward; the SE gate's "
       "backward in one pass); results equal the unfused ones to rounding"},
      {"run", "seed", "--seed", &TrainConfig::seed, "seed of initialisation, split, order and augmentation"},
      {"run", "device", "--device", &TrainConfig::device, "cpu, cuda or cuda:N"},
      {"run", "out", "--out", &TrainConfig::out, "run directory"},
      {"run", "predict", "--predict", &TrainConfig::predict, "predict the eval set at the end"},
  };
  return table;
}

std::string join(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) out += (out.empty() ? "" : ", ") + v;
  return out;
}

// A decimal integer that fits int64 ("-3" included: validate() reports the range).
bool is_integer(const std::string& text) {
  const size_t digits = text.rfind('-', 0) == 0 ? 1 : 0;
  return text.size() > digits && text.size() - digits < 19 &&
         text.find_first_not_of("0123456789", digits) == std::string::npos;
}

}  // namespace

bool all_folds(const TrainConfig& config) { return config.fold == "all"; }

int64_t fold_index(const TrainConfig& config) {
  EFFNET_CHECK(is_integer(config.fold), "config: data.fold is '", config.fold,
               "'; accepted: all, or a fold index 0 .. folds-1");
  return std::stoll(config.fold);
}

std::optional<DType> parse_precision(const std::string& text, const char* option) {
  if (text == "fp32") return std::nullopt;
  if (text == "bf16") return kBFloat16;
  if (text == "fp16") return kFloat16;
  EFFNET_FAIL(option, ": expected fp32, bf16 or fp16, got '", text, "'");
}

std::pair<int64_t, int64_t> parse_size(const std::string& text, const char* option) {
  if (text.empty()) return {0, 0};
  const size_t x = text.find('x');
  auto number = [&](const std::string& part) {
    EFFNET_CHECK(!part.empty() && part.find_first_not_of("0123456789") == std::string::npos && part.size() < 6,
                 option, ": expected HxW (e.g. 384x320) or one number, got '", text, "'");
    const int64_t v = std::stoll(part);
    EFFNET_CHECK(v > 0, option, ": sizes must be positive, got '", text, "'");
    return v;
  };
  if (x == std::string::npos) return {number(text), number(text)};
  return {number(text.substr(0, x)), number(text.substr(x + 1))};
}

void load_toml(const std::string& path, TrainConfig& config) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    EFFNET_FAIL(path, ": ", e.description(), " (", where.str(), ")");
  }
  for (const auto& [section_name, section_node] : root) {
    const toml::table* section = section_node.as_table();
    EFFNET_CHECK(section != nullptr, path, ": '", section_name.str(), "' must be a [section]");
    for (const auto& [key, value] : *section) {
      const std::string name = std::string(section_name.str()) + "." + std::string(key.str());
      const auto option = std::find_if(options().begin(), options().end(), [&](const Option& o) {
        return name == std::string(o.section) + "." + o.key;
      });
      if (option == options().end()) {
        std::vector<std::string> known;
        for (const Option& o : options())
          if (section_name.str() == o.section) known.push_back(o.key);
        EFFNET_FAIL(path, ": unknown key '", name, "'", known.empty() ? " (unknown section)" : "; known here: ",
                    join(known));
      }
      std::visit(
          [&](auto member) {
            using T = std::remove_cvref_t<decltype(config.*member)>;
            if constexpr (std::is_same_v<T, std::string>) {
              if (option->integer_or_string && value.is_integer()) {
                config.*member = std::to_string(*value.template value<int64_t>());
                return;
              }
              auto v = value.template value<std::string>();
              EFFNET_CHECK(v.has_value(), path, ": '", name, "' must be a string",
                           option->integer_or_string ? " or an integer" : "");
              config.*member = *v;
            } else if constexpr (std::is_same_v<T, bool>) {
              auto v = value.template value<bool>();
              EFFNET_CHECK(v.has_value(), path, ": '", name, "' must be true or false");
              config.*member = *v;
            } else if constexpr (std::is_same_v<T, double>) {
              auto v = value.template value<double>();  // integers are accepted too
              EFFNET_CHECK(v.has_value(), path, ": '", name, "' must be a number");
              config.*member = *v;
            } else {
              auto v = value.template value<int64_t>();
              EFFNET_CHECK(v.has_value() && value.is_integer(), path, ": '", name, "' must be an integer");
              EFFNET_CHECK(!std::is_unsigned_v<T> || *v >= 0, path, ": '", name, "' must not be negative");
              config.*member = static_cast<T>(*v);
            }
          },
          option->member);
    }
  }
}

std::string to_toml(const TrainConfig& config) {
  toml::table root;
  for (const Option& o : options()) {
    if (!root.contains(o.section)) root.insert(o.section, toml::table{});
    toml::table& section = *root[o.section].as_table();
    std::visit(
        [&](auto member) {
          using T = std::remove_cvref_t<decltype(config.*member)>;
          if constexpr (std::is_same_v<T, uint64_t>) {
            section.insert(o.key, static_cast<int64_t>(config.*member));
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (o.integer_or_string && is_integer(config.*member)) section.insert(o.key, std::stoll(config.*member));
            else section.insert(o.key, config.*member);
          } else {
            section.insert(o.key, config.*member);
          }
        },
        o.member);
  }
  std::ostringstream os;
  os << "# effnet_train's resolved configuration (every key; load it with --config)\n" << root << "\n";
  return os.str();
}

void add_flags(CLI::App& app, TrainConfig& config) {
  for (const Option& o : options()) {
    std::visit(
        [&](auto member) {
          using T = std::remove_cvref_t<decltype(config.*member)>;
          if constexpr (std::is_same_v<T, bool>) {
            app.add_flag(o.flag, config.*member, o.help);
          } else {
            CLI::Option* option = app.add_option(o.flag, config.*member, o.help)->capture_default_str();
            if (!o.choices.empty()) option->check(CLI::IsMember(o.choices));
          }
        },
        o.member);
  }
}

void apply_given_flags(const CLI::App& app, const TrainConfig& flags, TrainConfig& config) {
  for (const Option& o : options()) {
    if (app.get_option(o.flag)->count() == 0) continue;
    std::visit([&](auto member) { config.*member = flags.*member; }, o.member);
  }
}

void validate(const TrainConfig& c) {
  auto require = [](bool ok, const std::string& what) { EFFNET_CHECK(ok, "config: ", what); };
  require(!c.data_root.empty(), "data.root (--data) is required");
  for (const Option& o : options()) {
    if (o.choices.empty()) continue;
    const std::string* value = std::get_if<std::string TrainConfig::*>(&o.member) ? &(c.*std::get<std::string TrainConfig::*>(o.member))
                                                                                  : nullptr;
    if (value) {
      require(std::find(o.choices.begin(), o.choices.end(), *value) != o.choices.end(),
              std::string(o.section) + "." + o.key + " is '" + *value + "'; accepted: " + join(o.choices));
    }
  }
  require(c.folds >= 2 || c.val_ratio > 0, "data.folds must be >= 2 (or set data.val_ratio)");
  require(all_folds(c) || is_integer(c.fold), "data.fold is '" + c.fold + "'; accepted: all, or a fold index 0 .. " +
                                                 std::to_string(c.folds - 1));
  require(!all_folds(c) || c.val_ratio == 0, "data.fold = all needs the k-fold split (data.val_ratio = 0)");
  require(c.val_ratio > 0 || all_folds(c) || (fold_index(c) >= 0 && fold_index(c) < c.folds),
          "data.fold is " + c.fold + "; accepted: all, or a fold index 0 .. " + std::to_string(c.folds - 1));
  require(c.val_ratio >= 0 && c.val_ratio < 1, "data.val_ratio must be in [0, 1)");
  require(c.workers >= 1 && c.workers <= 64, "data.workers must be in [1, 64]");
  require(c.cache_mb >= 0, "data.cache_mb must not be negative");
  parse_size(c.crop, "augment.crop");
  parse_size(c.img_size, "augment.img_size");
  for (double p : {c.hflip, c.grayscale, c.equalize}) require(p >= 0 && p <= 1, "augment probabilities must be in [0, 1]");
  require(c.rotation >= 0 && c.rotation <= 180, "augment.rotation must be in [0, 180] degrees");
  require(c.hue >= 0 && c.hue <= 0.5, "augment.hue must be in [0, 0.5]");
  require(c.num_classes >= 2, "model.num_classes must be >= 2");
  require(c.head == "single" || (c.data_format == "mask" && c.num_classes == data::kMaskClasses),
          "model.head = multi (mask, gender and age heads) needs the 18 mask classes: data.format = mask and "
          "model.num_classes = 18");
  require(c.dropout >= 0 && c.dropout < 1, "model.dropout must be in [0, 1)");
  require(c.drop_path >= 0 && c.drop_path < 1, "model.drop_path must be in [0, 1)");
  require(c.epochs >= 1, "train.epochs must be >= 1");
  require(c.batch_size >= 1, "train.batch_size must be >= 1");
  require(c.lr > 0, "train.lr must be positive");
  require(c.weight_decay >= 0, "train.weight_decay must not be negative");
  require(c.label_smoothing >= 0 && c.label_smoothing < 1, "train.label_smoothing must be in [0, 1)");
  require(c.clip_grad >= 0, "train.clip_grad must not be negative");
  parse_head_weights(c.head_weights, "config: train.head_weights");
}

}  // namespace effnet::train
