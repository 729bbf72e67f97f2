#include "train/predict.h"

#include <cstdio>

#include "autograd/grad_mode.h"
#include "tensor/ops.h"

namespace effnet::train {

namespace {

// report_bad_files: say which rows hold another image's prediction (the loader itself stays quiet).
Tensor one_pass(Module& model, const std::vector<data::Sample>& samples, const data::TransformConfig& transforms,
                data::LoaderOptions options, bool report_bad_files) {
  options.report_bad_files = false;
  data::DataLoader loader(samples, transforms, options);
  std::vector<Tensor> parts;
  loader.start_epoch(0);
  while (std::optional<data::Batch> batch = loader.next()) {
    parts.push_back(softmax(model.forward(batch->images), 1).to(Device::cpu()));
  }
  EFFNET_CHECK(!parts.empty(), "predict: no samples");
  for (const std::string& message : report_bad_files ? loader.bad_file_messages() : std::vector<std::string>{}) {
    std::fprintf(stderr, "predict: %s (its row holds the prediction of the image that replaced it)\n",
                 message.c_str());
  }
  return cat(parts, 0);
}

}  // namespace

Tensor predict_probabilities(Module& model, const std::vector<data::Sample>& samples,
                             const data::TransformConfig& transforms, const data::LoaderOptions& options,
                             bool hflip_tta) {
  EFFNET_CHECK(!transforms.has_random(), "predict: the transforms must be deterministic (no augmentation)");
  data::LoaderOptions ordered = options;
  ordered.shuffle = false;
  ordered.drop_last = false;
  ordered.sample_weights.clear();
  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  Tensor p = one_pass(model, samples, transforms, ordered, options.report_bad_files);
  if (hflip_tta) {
    data::TransformConfig mirrored = transforms;
    mirrored.hflip = 1;  // always: apply_random's draw u < 1 holds for every u in [0, 1)
    p = mul(add(p, one_pass(model, samples, mirrored, ordered, false)), 0.5);
  }
  model.train(was_training);
  return p;
}

}  // namespace effnet::train
