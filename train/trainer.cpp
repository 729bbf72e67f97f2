#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "autograd/grad_mode.h"
#include "data/loader.h"
#include "data/split.h"
#include "ensemble/voting.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/tensorboard.h"
#include "losses/class_weights.h"
#include "losses/loss_spec.h"
#include "losses/losses.h"
#include "losses/metrics.h"
#include "losses/multi_head.h"
#include "models/efficientnet.h"
#include "models/weights.h"
#include "optim/adam.h"
#include "optim/loss_scaler.h"
#include "optim/madgrad.h"
#include "optim/param_groups.h"
#include "optim/sgd.h"
#include "tensor/autocast.h"
#include "tensor/math_mode.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "train/checkpoint.h"
#include "train/predict.h"

namespace effnet::train {

namespace {

std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int) { stop_requested = true; }

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The optimizer of the config, with its lr, weight decay and (where it has one) momentum.
template <class Opt, class Options>
std::unique_ptr<Optimizer> configured(const TrainConfig& c, std::vector<ParamGroup> groups, Options o) {
  o.lr = c.lr;
  o.weight_decay = c.weight_decay;
  if constexpr (requires { o.momentum; }) o.momentum = c.momentum;
  return std::make_unique<Opt>(std::move(groups), o);
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, const Module& model) {
  std::vector<ParamGroup> groups = weight_decay_groups(model, c.weight_decay);
  if (c.optimizer == "adamp") return configured<AdamP>(c, std::move(groups), AdamPOptions{});
  if (c.optimizer == "adam") return configured<Adam>(c, std::move(groups), AdamOptions{});
  if (c.optimizer == "adamw") return configured<AdamW>(c, std::move(groups), AdamWOptions{});
  if (c.optimizer == "sgd") return configured<SGD>(c, std::move(groups), SGDOptions{});
  if (c.optimizer == "sgdp") return configured<SGDP>(c, std::move(groups), SGDPOptions{});
  return configured<MADGRAD>(c, std::move(groups), MADGRADOptions{});
}

LRScheduleOptions schedule_for(const TrainConfig& c) {
  LRScheduleOptions s;
  s.unit = ScheduleUnit::Epoch;
  s.warmup_steps = c.warmup_epochs;
  s.step_size = c.step_size;
  s.gamma = c.gamma;
  s.t_max = c.epochs;
  s.t_0 = c.t0;
  s.t_mult = c.t_mult;
  s.eta_min = c.min_lr;
  if (c.scheduler == "step") s.kind = ScheduleKind::Step;
  else if (c.scheduler == "multistep") s.kind = ScheduleKind::MultiStep;
  else if (c.scheduler == "cosine") s.kind = ScheduleKind::Cosine;
  else if (c.scheduler == "cosine_restarts") s.kind = ScheduleKind::CosineWarmRestarts;
  std::stringstream milestones(c.milestones);
  for (std::string item; std::getline(milestones, item, ',');) {
    if (!item.empty()) s.milestones.push_back(std::stoll(item));
  }
  return s;
}

std::vector<int64_t> counts_of(const std::vector<int64_t>& labels, int64_t classes) {
  std::vector<double> values(labels.begin(), labels.end());
  return count_classes(from_vector(values, {static_cast<int64_t>(values.size())}, kInt64), classes);
}

// The loss of the configured head and the scores it classifies by: the logits (single head) or the
// multi head's 18-class log-probabilities; argmax and softmax treat both alike.
class Criterion {
 public:
  Criterion(const TrainConfig& c, const std::vector<data::Sample>& train_samples, Device device)
      : autocast_(parse_precision(c.precision, "train.precision")) {
    std::vector<int64_t> labels;
    for (const data::Sample& s : train_samples) labels.push_back(s.label);
    auto options_for = [&](const std::vector<int64_t>& head_labels, int64_t classes) {
      LossOptions o;
      o.label_smoothing = c.label_smoothing;
      o.focal_gamma = c.focal_gamma;
      if (c.class_weights == "inverse") {
        const std::vector<double> w = class_weights_from_counts(counts_of(head_labels, classes),
                                                                {c.class_weight_power, c.class_weight_scale});
        o.class_weights = from_vector(w, {classes}, TensorOptions(kFloat32, device));
      }
      return o;
    };
    if (c.head == "single") {
      single_.emplace(c.loss, options_for(labels, c.num_classes));
      return;
    }
    // Each head weighted by its own classes' counts (losses/multi_head.h).
    const std::array<std::vector<int64_t>, kMaskHeadCount> heads = mask_head_labels(labels);
    std::array<LossOptions, kMaskHeadCount> options;
    for (int64_t h = 0; h < kMaskHeadCount; ++h) options[h] = options_for(heads[h], kMaskHeadClasses[h]);
    multi_.emplace(c.loss, parse_head_weights(c.head_weights, "train.head_weights"), std::move(options));
  }

  // {loss, scores [N, C]} of one batch.
  std::pair<Tensor, Tensor> operator()(EfficientNet& model, const Tensor& images, const Tensor& labels) const {
    const AutocastGuard autocast(autocast_);  // mixed precision: 16-bit convolutions; the head is float32
    if (single_) {
      Tensor logits = model.forward(images);
      return {(*single_)(logits, labels), logits};
    }
    const MaskHeadLogits heads = model.forward_heads(images);
    return {(*multi_)(heads, labels), mask_joint_log_probs(heads)};
  }

 private:
  std::optional<DType> autocast_;
  std::optional<WeightedLoss> single_;
  std::optional<MultiHeadLoss> multi_;
};

// ImageNet weights from timm hold one 1000-class `classifier`: it is skipped when its shape differs, and a
// multi-head model starts its three heads from their initialisation unless the file has them too.
void load_init_weights(EfficientNet& model, const TrainConfig& c) {
  LoadOptions options;
  options.skip_mismatched_classifier = true;
  if (c.head == "multi") {
    options.strict = false;
    options.classifier_prefix = "classifier";
  }
  const LoadReport report = load_weights(model, c.init_weights, options);
  auto classifier_only = [](const std::vector<std::string>& names) {
    return std::all_of(names.begin(), names.end(), [](const std::string& n) { return n.rfind("classifier", 0) == 0; });
  };
  EFFNET_CHECK(classifier_only(report.missing) && classifier_only(report.unexpected), "model.init_weights ",
               c.init_weights, ": the file does not match the model apart from its classifiers:\n", report.str());
  std::printf("init weights: %s", report.str().c_str());
}

TrainConfig saved_config(const std::string& dir) {
  const std::string saved = dir + "/config.toml";
  EFFNET_CHECK(std::filesystem::exists(saved), "--resume ", dir, ": no config.toml there (not an effnet run?)");
  TrainConfig config;
  load_toml(saved, config);
  config.out = dir;
  return config;
}

// A progress line redrawn in place on a terminal; nothing per step otherwise.
class Progress {
 public:
  explicit Progress(int64_t batch_size) : tty_(isatty(STDOUT_FILENO) != 0), batch_size_(batch_size) {}
  void step(int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss, double lr, double images_per_s) {
    if (!tty_) return;
    const int width = 24, filled = static_cast<int>(width * batch / std::max<int64_t>(batches, 1));
    const double eta = images_per_s > 0 ? static_cast<double>((batches - batch) * batch_size_) / images_per_s : 0;
    std::printf("\repoch %lld/%lld [%s%s] %lld/%lld  loss %.4f  lr %.2e  %.1f img/s  ETA %.0f s ",
                static_cast<long long>(epoch + 1), static_cast<long long>(epochs), std::string(filled, '#').c_str(),
                std::string(width - filled, '.').c_str(), static_cast<long long>(batch),
                static_cast<long long>(batches), loss, lr, images_per_s, eta);
    std::fflush(stdout);
  }
  void end_epoch() {
    if (tty_) std::printf("\r%*s\r", 100, "");
  }

 private:
  bool tty_;
  int64_t batch_size_;
};

// One run directory: one fold, or a ratio split. `steps` counts the optimizer steps of this call across the
// folds (RunOptions::interrupt_after_steps); an interruption tells to resume `resume_dir`.
int train_one(const TrainConfig& config, bool resuming, const RunOptions& run, int64_t& steps,
              const std::string& resume_dir) {
  namespace fs = std::filesystem;
  validate(config);
  const std::string dir = config.out;
  if (!resuming) {
    EFFNET_CHECK(!fs::exists(dir + "/metrics.csv") && !fs::exists(dir + "/last.ckpt"), "run directory ", dir,
                 " already holds a run: continue it with --resume ", dir, " or choose another --out");
    fs::create_directories(dir);
    io::write_file_atomically(dir + "/config.toml", to_toml(config));
  }
  const Device device = Device::parse(config.device);
  manual_seed(config.seed);

  // ---- data
  data::Dataset dataset = config.data_format == "mask"
                              ? data::load_mask_train(config.data_root, {config.age_threshold, config.relabel})
                              : data::load_image_folder(config.data_root);
  for (size_t i = 0; i < dataset.problems.size() && i < 5; ++i) std::printf("data: %s\n", dataset.problems[i].c_str());
  if (dataset.problems.size() > 5) std::printf("data: ... %zu problems in all\n", dataset.problems.size());
  EFFNET_CHECK(static_cast<int64_t>(dataset.class_names.size()) == config.num_classes, "the dataset has ",
               dataset.class_names.size(), " classes but model.num_classes is ", config.num_classes);
  const data::Split split = config.val_ratio > 0 ? data::ratio_split(dataset.samples, config.val_ratio, config.seed)
                                                 : data::kfold_split(dataset.samples, config.folds,
                                                                     fold_index(config), config.seed);
  if (!resuming) data::write_split_csv(dir + "/split.csv", dataset.samples, split);
  std::vector<data::Sample> train_samples, val_samples;
  for (int64_t i : split.train) train_samples.push_back(dataset.samples[i]);
  for (int64_t i : split.val) val_samples.push_back(dataset.samples[i]);
  std::printf("data: %zu training images, %zu validation images, %lld classes\n", train_samples.size(),
              val_samples.size(), static_cast<long long>(config.num_classes));

  data::LoaderOptions loading;
  loading.batch_size = config.batch_size;
  loading.workers = static_cast<int>(config.workers);
  loading.seed = config.seed;
  loading.device = device;
  loading.cache_bytes = static_cast<size_t>(config.cache_mb) << 20;
  data::LoaderOptions train_loading = loading;
  if (config.balanced_sampler) train_loading.sample_weights = data::class_balanced_weights(train_samples);
  // Batch norm cannot train on one image: a last batch of one is dropped (PyTorch would fail on it).
  train_loading.drop_last = static_cast<int64_t>(train_samples.size()) % config.batch_size == 1;
  data::LoaderOptions val_loading = loading;
  val_loading.shuffle = false;
  data::DataLoader train_loader(train_samples, transforms_for(config, true), train_loading);
  data::DataLoader val_loader(val_samples, transforms_for(config, false), val_loading);

  // ---- model, loss, optimizer, schedule
  EfficientNet model(model_options(config));
  if (!config.init_weights.empty() && !resuming) load_init_weights(model, config);
  model.to(device);
  const Criterion criterion(config, train_samples, device);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, model);
  LRScheduler scheduler(*optimizer, schedule_for(config));
  set_allow_tf32(config.tf32);
  // float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none.
  std::optional<DynamicLossScaler> scaler;
  if (config.precision == "fp16") scaler.emplace();

  LoopState state;
  if (resuming) {
    state = load_checkpoint(dir + "/last.ckpt", model, *optimizer, scheduler);
    if (scaler && state.loss_scale > 0) scaler->restore(state.loss_scale, state.loss_scale_growth);
    std::printf("resumed %s at epoch %lld, batch %lld\n", dir.c_str(), static_cast<long long>(state.epoch + 1),
                static_cast<long long>(state.batch));
  }
  io::TensorBoardWriter board(dir);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const std::vector<std::string>& names = dataset.class_names;
  Progress progress(config.batch_size);

  for (int64_t epoch = state.epoch; epoch < config.epochs; ++epoch) {
    // ---- train
    model.train();
    train_loader.start_epoch(epoch, state.batch);  // a resumed epoch continues after its finished batches
    const double lr = optimizer->lr(0);
    const auto started = Clock::now();
    int64_t batch_index = state.batch;
    while (std::optional<data::Batch> batch = train_loader.next()) {
      const auto [loss, scores] = criterion(model, batch->images, batch->labels);
      const double value = loss.item();
      if (!std::isfinite(value)) {
        progress.end_epoch();
        std::printf("stopped: the loss is %f at epoch %lld, batch %lld (lower the learning rate?); %s\n", value,
                    static_cast<long long>(epoch + 1), static_cast<long long>(batch_index + 1),
                    fs::exists(dir + "/last.ckpt") ? ("the last good state is " + dir + "/last.ckpt").c_str()
                                                   : "no checkpoint was written yet");
        return 3;
      }
      // float16: skips the step (and lowers the scale) when a gradient overflowed
      backward_and_step(loss, *optimizer, scaler ? &*scaler : nullptr, config.clip_grad, model.parameters());
      if (scaler) {
        state.loss_scale = scaler->current_scale();
        state.loss_scale_growth = scaler->growth_tracker();
      }
      optimizer->zero_grad();
      scheduler.step_iteration();
      const int64_t n = batch->images.size(0);
      state.loss_sum += value * static_cast<double>(n);
      state.correct += static_cast<int64_t>(sum(eq(cast(argmax(scores, 1), kFloat32), cast(batch->labels, kFloat32))).item());
      state.seen += n;
      ++batch_index;
      ++steps;
      const double seconds = state.seconds + seconds_since(started);
      progress.step(epoch, config.epochs, batch_index, train_loader.batches_per_epoch(), state.loss_sum / state.seen,
                    lr, static_cast<double>(state.seen) / seconds);
      if (stop_requested || steps == run.interrupt_after_steps) {
        progress.end_epoch();
        state.epoch = epoch;
        state.batch = batch_index;
        state.seconds = seconds;
        save_checkpoint(dir + "/last.ckpt", model, *optimizer, scheduler, state);
        std::printf("interrupted at epoch %lld, batch %lld%s: continue with --resume %s\n",
                    static_cast<long long>(epoch + 1), static_cast<long long>(batch_index),
                    dir == resume_dir ? "" : (" of " + dir).c_str(), resume_dir.c_str());
        return 4;
      }
    }
    progress.end_epoch();
    const double train_seconds = state.seconds + seconds_since(started);
    const double train_loss = state.loss_sum / std::max<int64_t>(state.seen, 1);
    const double train_acc = static_cast<double>(state.correct) / std::max<int64_t>(state.seen, 1);
    const double images_per_s = static_cast<double>(state.seen) / train_seconds;

    // ---- validate
    model.eval();
    ConfusionMatrix confusion(config.num_classes);
    double val_loss_sum = 0;
    std::vector<Tensor> probabilities;
    std::vector<int64_t> val_labels;
    std::vector<std::string> val_ids;
    {
      autograd::NoGradGuard no_grad;
      val_loader.start_epoch(0);
      while (std::optional<data::Batch> batch = val_loader.next()) {
        const auto [loss, scores] = criterion(model, batch->images, batch->labels);
        val_loss_sum += loss.item() * static_cast<double>(batch->images.size(0));
        confusion.add(argmax(scores, 1), batch->labels);
        probabilities.push_back(softmax(scores, 1).to(Device::cpu()));
        // Rows by position, as test_probs.csv: every validation image once (oof_probs.csv needs each), an
        // undecodable one holding the prediction of the image the loader put in its place.
        for (int64_t j = 0; j < batch->images.size(0); ++j) {
          const data::Sample& sample = val_samples[val_ids.size()];
          val_labels.push_back(sample.label);
          val_ids.push_back(sample.path);
        }
      }
    }
    const double val_loss = val_loss_sum / std::max<int64_t>(confusion.total(), 1);
    const double macro_f1 = confusion.macro_f1();
    scheduler.step_epoch();

    // ---- record
    const bool first_row = !fs::exists(dir + "/metrics.csv");
    {
      std::ofstream metrics(dir + "/metrics.csv", std::ios::app);
      if (first_row) metrics << "epoch,train_loss,train_acc,val_loss,val_acc,val_macro_f1,lr,images_per_s,seconds\n";
      char row[256];
      std::snprintf(row, sizeof row, "%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6g,%.2f,%.2f\n", static_cast<long long>(epoch + 1),
                    train_loss, train_acc, val_loss, confusion.accuracy(), macro_f1, lr, images_per_s, train_seconds);
      metrics << row;
    }
    for (auto [tag, value] : {std::pair{"train/loss", train_loss}, {"train/acc", train_acc}, {"val/loss", val_loss},
                              {"val/acc", confusion.accuracy()}, {"val/macro_f1", macro_f1}, {"lr", lr},
                              {"images_per_s", images_per_s}}) {
      board.add_scalar(tag, value, epoch + 1);
    }
    board.flush();
    std::printf("epoch %lld/%lld  train loss %.4f acc %.3f  val loss %.4f acc %.3f macro-F1 %.4f  lr %.2e  %.1f img/s  %.0f s\n",
                static_cast<long long>(epoch + 1), static_cast<long long>(config.epochs), train_loss, train_acc, val_loss,
                confusion.accuracy(), macro_f1, lr, images_per_s, train_seconds);
    std::fflush(stdout);  // a line per epoch must reach a log file or a pipe as it happens
    if (macro_f1 > state.best_macro_f1) {
      state.best_macro_f1 = macro_f1;
      state.best_epoch = epoch + 1;
      save_weights(model, dir + "/best.safetensors", {{"model", config.model}, {"epoch", std::to_string(epoch + 1)},
                                                      {"val_macro_f1", std::to_string(macro_f1)}});
      ensemble::write_probabilities_csv(dir + "/val_probs.csv", val_ids, val_labels, cat(probabilities, 0));
    }
    if (epoch + 1 == config.epochs) {
      std::printf("%s%s", confusion.report(names).c_str(), confusion.matrix_table().c_str());
    }
    state = LoopState{epoch + 1, 0, 0, 0, 0, 0, state.best_macro_f1, state.best_epoch, state.loss_scale,
                      state.loss_scale_growth};
    save_checkpoint(dir + "/last.ckpt", model, *optimizer, scheduler, state);
  }
  std::printf("best validation macro-F1 %.4f at epoch %lld (%s/best.safetensors)\n", state.best_macro_f1,
              static_cast<long long>(state.best_epoch), dir.c_str());

  // ---- predict
  if (config.predict) {
    EFFNET_CHECK(config.data_format == "mask", "--predict needs the competition layout (data.format = mask)");
    std::vector<std::string> image_ids;
    const data::Dataset eval_set = data::load_mask_eval(config.data_root, &image_ids);
    load_weights(model, dir + "/best.safetensors");
    const AutocastGuard autocast(parse_precision(config.precision, "train.precision"));
    const Tensor p = predict_probabilities(model, eval_set.samples, transforms_for(config, false), val_loading);
    ensemble::write_probabilities_csv(dir + "/test_probs.csv", image_ids, std::vector<int64_t>(image_ids.size(), -1), p);
    ensemble::write_submission_csv(dir + "/submission.csv", image_ids, p);
    std::printf("predicted %zu images: %s/submission.csv\n", image_ids.size(), dir.c_str());
  }
  return 0;
}

std::string fold_dir(const std::string& dir, int64_t fold) { return dir + "/fold_" + std::to_string(fold); }

enum class FoldState { NotStarted, Started, Finished };

// From the fold's own files: last.ckpt's epoch says whether training ended, submission.csv (written last)
// whether the prediction did.
FoldState fold_state(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/last.ckpt")) return FoldState::NotStarted;
  const TrainConfig config = saved_config(dir);
  const safetensors::File checkpoint = safetensors::load(dir + "/last.ckpt");
  const auto epoch = checkpoint.metadata.find("loop.epoch");
  EFFNET_CHECK(epoch != checkpoint.metadata.end(), dir, "/last.ckpt: not an effnet checkpoint (no loop.epoch)");
  const bool trained = std::stoll(epoch->second) >= config.epochs;
  const bool predicted = !config.predict || std::filesystem::exists(dir + "/submission.csv");
  return trained && predicted ? FoldState::Finished : FoldState::Started;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", v);
  return text;
}

// oof_probs.csv and cv_metrics.csv from the folds' val_probs.csv and metrics.csv (see trainer.h).
void write_cross_validation(const TrainConfig& config, const std::string& dir) {
  const data::CsvTable order = data::read_csv(fold_dir(dir, 0) + "/split.csv");
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < order.rows.size(); ++i) position[order.rows[i][order.column("path")]] = i;
  std::vector<ensemble::ProbabilityTable> vals;
  std::vector<std::pair<size_t, int64_t>> source(order.rows.size(), {0, -1});  // position -> (fold, row)
  std::vector<std::vector<std::string>> folds;
  double f1_sum = 0, accuracy_sum = 0;
  for (int64_t k = 0; k < config.folds; ++k) {
    vals.push_back(ensemble::read_probabilities_csv(fold_dir(dir, k) + "/val_probs.csv"));
    const ensemble::ProbabilityTable& val = vals.back();
    EFFNET_CHECK(val.classes() == vals.front().classes(), val.name, ": ", val.classes(), " classes where ",
                 vals.front().name, " has ", vals.front().classes());
    for (int64_t r = 0; r < val.rows(); ++r) {
      const auto found = position.find(val.ids[r]);
      EFFNET_CHECK(found != position.end(), val.name, ": '", val.ids[r], "' is not in ", order.name);
      EFFNET_CHECK(source[found->second].second < 0, val.name, ": '", val.ids[r],
                   "' was already validated by an earlier fold");
      source[found->second] = {static_cast<size_t>(k), r};
    }
    // The best epoch: the first with the largest macro-F1, as the run chose best.safetensors.
    const data::CsvTable metrics = data::read_csv(fold_dir(dir, k) + "/metrics.csv");
    EFFNET_CHECK(!metrics.rows.empty(), metrics.name, ": no epoch recorded");
    const size_t f1_column = metrics.column("val_macro_f1");
    size_t best = 0;
    for (size_t r = 1; r < metrics.rows.size(); ++r) {
      if (metrics.number(r, f1_column) > metrics.number(best, f1_column)) best = r;
    }
    const double f1 = metrics.number(best, f1_column), accuracy = metrics.number(best, metrics.column("val_acc"));
    f1_sum += f1;
    accuracy_sum += accuracy;
    folds.push_back({std::to_string(k), std::to_string(val.rows()), metrics.rows[best][metrics.column("epoch")],
                     number(f1), number(accuracy)});
  }
  // The union of the folds' rows in dataset order.
  const int64_t classes = vals.front().classes();
  ensemble::ProbabilityTable oof;
  std::vector<double> p;
  for (size_t i = 0; i < source.size(); ++i) {
    const auto [k, r] = source[i];
    EFFNET_CHECK(r >= 0, dir, ": no fold validated '", order.rows[i][order.column("path")],
                 "' (the folds' val_probs.csv must cover ", order.name, ")");
    oof.ids.push_back(vals[k].ids[r]);
    oof.labels.push_back(vals[k].labels[r]);
    const std::vector<double> row = vals[k].probabilities.select(0, r).to_vector();
    p.insert(p.end(), row.begin(), row.end());
  }
  oof.probabilities = from_vector(p, {static_cast<int64_t>(source.size()), classes}, kFloat64);
  ensemble::write_probabilities_csv(dir + "/oof_probs.csv", oof);

  ConfusionMatrix pooled(classes);
  const std::vector<double> predicted = argmax(oof.probabilities, 1).to_vector();
  pooled.add(std::vector<int64_t>(predicted.begin(), predicted.end()), oof.labels);
  const double k = static_cast<double>(config.folds);
  const std::string images = std::to_string(oof.rows());
  folds.push_back({"mean", images, "", number(f1_sum / k), number(accuracy_sum / k)});
  folds.push_back({"oof", images, "", number(pooled.macro_f1()), number(pooled.accuracy())});
  data::write_csv(dir + "/cv_metrics.csv", {"fold", "images", "best_epoch", "macro_f1", "accuracy"}, folds);
  std::printf("cross-validation, %lld folds: out-of-fold macro-F1 %.4f, accuracy %.4f over %lld images (folds' "
              "best macro-F1: mean %.4f); %s/cv_metrics.csv\n",
              static_cast<long long>(config.folds), pooled.macro_f1(), pooled.accuracy(),
              static_cast<long long>(oof.rows()), f1_sum / k, dir.c_str());
}

// test_probs.csv and submission.csv: the mean of the folds' test probabilities (soft voting).
void write_fold_ensemble(const TrainConfig& config, const std::string& dir) {
  std::vector<ensemble::ProbabilityTable> folds;
  for (int64_t k = 0; k < config.folds; ++k) {
    folds.push_back(ensemble::read_probabilities_csv(fold_dir(dir, k) + "/test_probs.csv"));
  }
  const ensemble::ProbabilityTable mean = ensemble::vote(folds, {}, ensemble::Vote::Soft);
  ensemble::write_probabilities_csv(dir + "/test_probs.csv", mean);
  ensemble::write_submission_csv(dir + "/submission.csv", mean.ids, mean.probabilities);
  std::printf("soft vote of %lld folds over %lld images: %s/submission.csv\n", static_cast<long long>(config.folds),
              static_cast<long long>(mean.rows()), dir.c_str());
}

int train_all_folds(const TrainConfig& config, bool resuming, const RunOptions& run, int64_t& steps) {
  namespace fs = std::filesystem;
  const std::string dir = config.out;
  if (!resuming) {
    EFFNET_CHECK(!fs::exists(fold_dir(dir, 0)) && !fs::exists(dir + "/metrics.csv") && !fs::exists(dir + "/last.ckpt"),
                 "run directory ", dir, " already holds a run: continue it with --resume ", dir,
                 " or choose another --out");
    fs::create_directories(dir);
    io::write_file_atomically(dir + "/config.toml", to_toml(config));
  }
  for (int64_t k = 0; k < config.folds; ++k) {
    const std::string fold_out = fold_dir(dir, k);
    const FoldState state = fold_state(fold_out);
    std::printf("fold %lld of %lld: %s\n", static_cast<long long>(k), static_cast<long long>(config.folds),
                state == FoldState::Finished ? (fold_out + " is finished").c_str()
                : state == FoldState::Started ? ("resuming " + fold_out).c_str()
                                               : fold_out.c_str());
    std::fflush(stdout);
    if (state == FoldState::Finished) continue;
    TrainConfig fold = config;
    if (state == FoldState::Started) {
      fold = saved_config(fold_out);  // as a lone --resume: the fold's own config.toml wins
    } else {
      fold.fold = std::to_string(k);
      fold.out = fold_out;
    }
    const int code = train_one(fold, state == FoldState::Started, run, steps, dir);
    if (code != 0) return code;
  }
  write_cross_validation(config, dir);
  if (config.predict) write_fold_ensemble(config, dir);
  return 0;
}

}  // namespace

EfficientNetOptions model_options(const TrainConfig& config) {
  EfficientNetOptions options = efficientnet_options(config.model);
  options.num_classes = config.num_classes;
  options.dropout = config.dropout;
  options.drop_path = config.drop_path;
  options.head = config.head == "multi" ? ClassifierHead::Multi : ClassifierHead::Single;
  options.channels_last = config.channels_last;
  options.fused = config.fused;
  return options;
}

data::TransformConfig transforms_for(const TrainConfig& c, bool training) {
  data::TransformConfig t;
  std::tie(t.crop_h, t.crop_w) = parse_size(c.crop, "augment.crop");
  std::tie(t.resize_h, t.resize_w) = parse_size(c.img_size, "augment.img_size");
  if (training) {
    t.rotation_degrees = c.rotation;
    t.hflip = c.hflip;
    t.brightness = c.brightness;
    t.contrast = c.contrast;
    t.saturation = c.saturation;
    t.hue = c.hue;
    t.grayscale = c.grayscale;
    t.equalize = c.equalize;
  }
  return t;
}

int run_training(TrainConfig config, const RunOptions& run) {
  const bool resuming = !run.resume_dir.empty();
  if (resuming) config = saved_config(run.resume_dir);
  validate(config);
  int64_t steps = 0;
  if (all_folds(config)) return train_all_folds(config, resuming, run, steps);
  return train_one(config, resuming, run, steps, config.out);
}

}  // namespace effnet::train
