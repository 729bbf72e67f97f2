#include "layers/module.h"

#include "autograd/grad_mode.h"

namespace effnet {

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::collect(const std::string& prefix, What what, std::vector<std::pair<std::string, Tensor>>& out) const {
  if (what != What::Buffers)
    for (const auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
  if (what != What::Parameters)
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", what, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", What::Parameters, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", What::Buffers, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", What::Both, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::to(Device device) {
  autograd::NoGradGuard no_grad;
  for (auto& [name, t] : named_parameters()) t.set_data(t.to(device));
  for (auto& [name, t] : named_buffers()) t.set_data(t.to(device));
}

void Module::to(DType dtype) {
  autograd::NoGradGuard no_grad;
  for (auto& [name, t] : named_parameters()) t.set_data(t.to(dtype));
  for (auto& [name, t] : named_buffers()) {
    if (is_floating(t.dtype())) t.set_data(t.to(dtype));
  }
}

void Module::zero_grad() {
  for (const Tensor& t : parameters()) t.set_grad(Tensor());
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  if (!value.requires_grad()) value.requires_grad_();
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, value);
  return value;
}

std::shared_ptr<Module> Sequential::add(std::shared_ptr<Module> child) {
  modules_.push_back(child);
  return register_module(std::to_string(modules_.size() - 1), child);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

}  // namespace effnet
