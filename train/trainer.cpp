#include "train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "autograd/grad_mode.h"
#include "data/loader.h"
#include "data/split.h"
#include "io/tensorboard.h"
#include "losses/class_weights.h"
#include "losses/loss_spec.h"
#include "losses/losses.h"
#include "losses/metrics.h"
#include "models/efficientnet.h"
#include "models/weights.h"
#include "optim/adam.h"
#include "optim/clip_grad.h"
#include "optim/madgrad.h"
#include "optim/param_groups.h"
#include "optim/sgd.h"
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

Tensor labels_of(const std::vector<data::Sample>& samples) {
  std::vector<double> labels;
  for (const data::Sample& s : samples) labels.push_back(static_cast<double>(s.label));
  return from_vector(labels, {static_cast<int64_t>(labels.size())}, kInt64);
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

}  // namespace

int run_training(TrainConfig config, const RunOptions& run) {
  namespace fs = std::filesystem;
  const bool resuming = !run.resume_dir.empty();
  if (resuming) {
    const std::string saved = run.resume_dir + "/config.toml";
    EFFNET_CHECK(fs::exists(saved), "--resume ", run.resume_dir, ": no config.toml there (not an effnet run?)");
    config = TrainConfig{};
    load_toml(saved, config);
    config.out = run.resume_dir;
  }
  validate(config);
  const std::string dir = config.out;
  if (!resuming) {
    EFFNET_CHECK(!fs::exists(dir + "/metrics.csv") && !fs::exists(dir + "/last.ckpt"), "run directory ", dir,
                 " already holds a run: continue it with --resume ", dir, " or choose another --out");
    fs::create_directories(dir);
    write_text_file(dir + "/config.toml", to_toml(config));
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
                                                 : data::kfold_split(dataset.samples, config.folds, config.fold, config.seed);
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
  data::LoaderOptions val_loading = loading;
  val_loading.shuffle = false;
  data::DataLoader train_loader(train_samples, transforms_for(config, true), train_loading);
  data::DataLoader val_loader(val_samples, transforms_for(config, false), val_loading);

  // ---- model, loss, optimizer, schedule
  EfficientNetOptions model_options = efficientnet_options(config.model);
  model_options.num_classes = config.num_classes;
  model_options.dropout = config.dropout;
  model_options.drop_path = config.drop_path;
  EfficientNet model(model_options);
  if (!config.init_weights.empty() && !resuming) {
    LoadOptions skip_classifier;
    skip_classifier.skip_mismatched_classifier = true;
    std::printf("init weights: %s", load_weights(model, config.init_weights, skip_classifier).str().c_str());
  }
  model.to(device);

  LossOptions loss_options;
  loss_options.label_smoothing = config.label_smoothing;
  loss_options.focal_gamma = config.focal_gamma;
  if (config.class_weights == "inverse") {
    const std::vector<int64_t> counts = count_classes(labels_of(train_samples), config.num_classes);
    std::vector<double> w = class_weights_from_counts(counts, {config.class_weight_power, config.class_weight_scale});
    loss_options.class_weights = from_vector(w, {config.num_classes}, TensorOptions(kFloat32, device));
  }
  const WeightedLoss loss_fn(config.loss, loss_options);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, model);
  LRScheduler scheduler(*optimizer, schedule_for(config));

  LoopState state;
  if (resuming) {
    state = load_checkpoint(dir + "/last.ckpt", model, *optimizer, scheduler);
    std::printf("resumed %s at epoch %lld, batch %lld\n", dir.c_str(), static_cast<long long>(state.epoch + 1),
                static_cast<long long>(state.batch));
  }
  io::TensorBoardWriter board(dir);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const std::vector<std::string>& names = dataset.class_names;
  int64_t steps = 0;
  Progress progress(config.batch_size);

  for (int64_t epoch = state.epoch; epoch < config.epochs; ++epoch) {
    // ---- train
    model.train();
    train_loader.start_epoch(epoch, state.batch);  // a resumed epoch continues after its finished batches
    const double lr = optimizer->lr(0);
    const auto started = Clock::now();
    int64_t batch_index = state.batch;
    while (std::optional<data::Batch> batch = train_loader.next()) {
      const Tensor logits = model.forward(batch->images);
      const Tensor loss = loss_fn(logits, batch->labels);
      const double value = loss.item();
      if (!std::isfinite(value)) {
        progress.end_epoch();
        std::printf("stopped: the loss is %f at epoch %lld, batch %lld (lower the learning rate?); %s\n", value,
                    static_cast<long long>(epoch + 1), static_cast<long long>(batch_index + 1),
                    fs::exists(dir + "/last.ckpt") ? ("the last good state is " + dir + "/last.ckpt").c_str()
                                                   : "no checkpoint was written yet");
        return 3;
      }
      loss.backward();
      if (config.clip_grad > 0) clip_grad_norm(model.parameters(), config.clip_grad);
      optimizer->step();
      optimizer->zero_grad();
      scheduler.step_iteration();
      const int64_t n = batch->images.size(0);
      state.loss_sum += value * static_cast<double>(n);
      state.correct += static_cast<int64_t>(sum(eq(cast(argmax(logits, 1), kFloat32), cast(batch->labels, kFloat32))).item());
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
        std::printf("interrupted at epoch %lld, batch %lld: continue with --resume %s\n",
                    static_cast<long long>(epoch + 1), static_cast<long long>(batch_index), dir.c_str());
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
        const Tensor logits = model.forward(batch->images);
        val_loss_sum += loss_fn(logits, batch->labels).item() * static_cast<double>(batch->images.size(0));
        confusion.add(argmax(logits, 1), batch->labels);
        probabilities.push_back(softmax(logits, 1).to(Device::cpu()));
        for (int64_t i : batch->indices) {
          val_labels.push_back(val_samples[i].label);
          val_ids.push_back(val_samples[i].path);
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
      write_probabilities_csv(dir + "/val_probs.csv", val_ids, val_labels, cat(probabilities, 0));
    }
    if (epoch + 1 == config.epochs) {
      std::printf("%s%s", confusion.report(names).c_str(), confusion.matrix_table().c_str());
    }
    state = LoopState{epoch + 1, 0, 0, 0, 0, 0, state.best_macro_f1, state.best_epoch};
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
    const Tensor p = predict_probabilities(model, eval_set.samples, transforms_for(config, false), val_loading);
    write_probabilities_csv(dir + "/test_probs.csv", image_ids, std::vector<int64_t>(image_ids.size(), -1), p);
    write_submission_csv(dir + "/submission.csv", image_ids, p);
    std::printf("predicted %zu images: %s/submission.csv\n", image_ids.size(), dir.c_str());
  }
  return 0;
}

}  // namespace effnet::train
