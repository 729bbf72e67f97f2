#include "train/checkpoint.h"

#include <sstream>

#include "io/safetensors.h"
#include "models/weights.h"
#include "tensor/random.h"

namespace effnet::train {

namespace {

std::string exact(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                     const LRScheduler& scheduler, const LoopState& state) {
  safetensors::NamedTensors tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back("model." + name, t);
  const OptimizerState optimizer_state = optimizer.state_dict();
  for (const auto& [name, t] : optimizer_state.tensors) tensors.emplace_back("optimizer." + name, t);
  std::map<std::string, std::string> metadata;
  for (const auto& [k, v] : optimizer_state.metadata) metadata["optimizer." + k] = v;
  for (const auto& [k, v] : scheduler.state_dict()) metadata["scheduler." + k] = v;
  metadata["loop.epoch"] = std::to_string(state.epoch);
  metadata["loop.batch"] = std::to_string(state.batch);
  metadata["loop.loss_sum"] = exact(state.loss_sum);
  metadata["loop.correct"] = std::to_string(state.correct);
  metadata["loop.seen"] = std::to_string(state.seen);
  metadata["loop.seconds"] = exact(state.seconds);
  metadata["loop.best_macro_f1"] = exact(state.best_macro_f1);
  metadata["loop.best_epoch"] = std::to_string(state.best_epoch);
  metadata["loop.loss_scale"] = exact(state.loss_scale);
  metadata["loop.loss_scale_growth"] = std::to_string(state.loss_scale_growth);
  metadata["rng.seed"] = std::to_string(default_generator().seed());
  metadata["rng.offset"] = std::to_string(default_generator().offset());
  safetensors::save(path, tensors, metadata);
}

LoopState load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer, LRScheduler& scheduler) {
  const safetensors::File file = safetensors::load(path);
  auto meta = [&](const std::string& key) {
    auto found = file.metadata.find(key);
    EFFNET_CHECK(found != file.metadata.end(), path, ": not an effnet checkpoint (no '", key, "' in its metadata)");
    return found->second;
  };
  safetensors::NamedTensors model_tensors;
  OptimizerState optimizer_state;
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("model.", 0) == 0) model_tensors.emplace_back(name.substr(6), t);
    else if (name.rfind("optimizer.", 0) == 0) optimizer_state.tensors.emplace_back(name.substr(10), t);
  }
  std::map<std::string, std::string> scheduler_state;
  for (const auto& [k, v] : file.metadata) {
    if (k.rfind("optimizer.", 0) == 0) optimizer_state.metadata[k.substr(10)] = v;
    else if (k.rfind("scheduler.", 0) == 0) scheduler_state[k.substr(10)] = v;
  }
  try {
    load_state_dict(model, model_tensors);
    optimizer.load_state_dict(optimizer_state);
    scheduler.load_state_dict(scheduler_state);
  } catch (const Error& e) {
    EFFNET_FAIL(path, ": ", e.what());
  }
  LoopState s;
  s.epoch = std::stoll(meta("loop.epoch"));
  s.batch = std::stoll(meta("loop.batch"));
  s.loss_sum = std::stod(meta("loop.loss_sum"));
  s.correct = std::stoll(meta("loop.correct"));
  s.seen = std::stoll(meta("loop.seen"));
  s.seconds = std::stod(meta("loop.seconds"));
  s.best_macro_f1 = std::stod(meta("loop.best_macro_f1"));
  s.best_epoch = std::stoll(meta("loop.best_epoch"));
  if (file.metadata.count("loop.loss_scale") != 0) {  // written since mixed precision (older: fp32 runs)
    s.loss_scale = std::stod(meta("loop.loss_scale"));
    s.loss_scale_growth = std::stoll(meta("loop.loss_scale_growth"));
  }
  default_generator().manual_seed(std::stoull(meta("rng.seed")));
  default_generator().set_offset(std::stoull(meta("rng.offset")));
  return s;
}

}  // namespace effnet::train
