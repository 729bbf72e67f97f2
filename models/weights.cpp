#include "models/weights.h"

#include <map>
#include <sstream>

#include "autograd/grad_mode.h"

namespace effnet {

std::string LoadReport::str() const {
  std::ostringstream os;
  auto list = [&os](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << what << " (" << names.size() << "):";
    for (const std::string& n : names) os << ' ' << n;
    os << '\n';
  };
  os << "loaded " << loaded.size() << " tensors\n";
  list("missing from the file", missing);
  list("unexpected in the file", unexpected);
  list("skipped (shape differs)", skipped);
  return os.str();
}

LoadReport load_state_dict(Module& module, const safetensors::NamedTensors& tensors, const LoadOptions& options) {
  std::map<std::string, Tensor> from_file;
  for (const auto& [name, t] : tensors) from_file[name] = t;
  LoadReport report;
  std::vector<std::pair<Tensor, Tensor>> copies;  // checked first, copied only if everything is valid
  for (const auto& [name, target] : module.state_dict()) {
    auto found = from_file.find(name);
    if (found == from_file.end()) {
      report.missing.push_back(name);
      continue;
    }
    const Tensor& source = found->second;
    from_file.erase(found);
    if (source.shape() != target.shape()) {
      const bool classifier = name.rfind(options.classifier_prefix, 0) == 0;
      EFFNET_CHECK(classifier && options.skip_mismatched_classifier, "load weights: '", name, "' is ",
                   shape_str(source.shape()), " in the file but ", shape_str(target.shape()), " in the model",
                   classifier ? " (to start a model with another number of classes, skip the classifier)" : "");
      report.skipped.push_back(name);
      continue;
    }
    EFFNET_CHECK(is_floating(source.dtype()) == is_floating(target.dtype()), "load weights: '", name, "' is ",
                 dtype_name(source.dtype()), " in the file but ", dtype_name(target.dtype()), " in the model");
    copies.emplace_back(target, source);
    report.loaded.push_back(name);
  }
  for (const auto& [name, t] : from_file) report.unexpected.push_back(name);
  EFFNET_CHECK(!options.strict || (report.missing.empty() && report.unexpected.empty()),
               "load weights: the file does not match the model:\n", report.str());
  autograd::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.detach().copy_(source);
  return report;
}

LoadReport load_weights(Module& module, const std::string& path, const LoadOptions& options) {
  try {
    return load_state_dict(module, safetensors::load(path).tensors, options);
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.find(path) != std::string::npos) throw;
    EFFNET_FAIL(path, ": ", message);
  }
}

void save_weights(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
  safetensors::save(path, module.state_dict(), metadata);
}

}  // namespace effnet
