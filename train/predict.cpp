#include "train/predict.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "tensor/ops.h"

namespace effnet::train {

Tensor predict_probabilities(Module& model, const std::vector<data::Sample>& samples,
                             const data::TransformConfig& transforms, const data::LoaderOptions& options) {
  data::LoaderOptions ordered = options;
  ordered.shuffle = false;
  ordered.drop_last = false;
  ordered.sample_weights.clear();
  data::DataLoader loader(samples, transforms, ordered);
  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> parts;
  loader.start_epoch(0);
  while (std::optional<data::Batch> batch = loader.next()) {
    parts.push_back(softmax(model.forward(batch->images), 1).to(Device::cpu()));
  }
  model.train(was_training);
  EFFNET_CHECK(!parts.empty(), "predict: no samples");
  for (const std::string& message : loader.bad_file_messages()) {
    std::fprintf(stderr, "predict: %s (its row holds the prediction of the image that replaced it)\n",
                 message.c_str());
  }
  return cat(parts, 0);
}

void write_text_file(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    EFFNET_CHECK(out.good(), "cannot write ", temporary);
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  EFFNET_CHECK(!ec, "cannot rename ", temporary, " to ", path, ": ", ec.message());
}

void write_probabilities_csv(const std::string& path, const std::vector<std::string>& ids,
                             const std::vector<int64_t>& labels, const Tensor& probabilities) {
  const int64_t n = probabilities.size(0), classes = probabilities.size(1);
  EFFNET_CHECK(static_cast<int64_t>(ids.size()) == n && static_cast<int64_t>(labels.size()) == n,
               "write_probabilities_csv: ", ids.size(), " ids and ", labels.size(), " labels for ", n, " rows");
  const std::vector<double> p = probabilities.to_vector();
  std::ostringstream os;
  os << "id,label";
  for (int64_t c = 0; c < classes; ++c) os << ",p" << c;
  os << '\n';
  char number[32];
  for (int64_t i = 0; i < n; ++i) {
    os << ids[i] << ',' << labels[i];
    for (int64_t c = 0; c < classes; ++c) {
      std::snprintf(number, sizeof number, ",%.8g", p[i * classes + c]);
      os << number;
    }
    os << '\n';
  }
  write_text_file(path, os.str());
}

void write_submission_csv(const std::string& path, const std::vector<std::string>& image_ids,
                          const Tensor& probabilities) {
  EFFNET_CHECK(static_cast<int64_t>(image_ids.size()) == probabilities.size(0), "write_submission_csv: ",
               image_ids.size(), " image ids for ", probabilities.size(0), " rows of probabilities");
  const std::vector<double> answers = argmax(probabilities, 1).to_vector();
  std::ostringstream os;
  os << "ImageID,ans\n";
  for (size_t i = 0; i < image_ids.size(); ++i) os << image_ids[i] << ',' << static_cast<int64_t>(answers[i]) << '\n';
  write_text_file(path, os.str());
}

}  // namespace effnet::train
