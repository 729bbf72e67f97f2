// Module: a layer with named parameters (leaves that require grad), named buffers (state that is saved
// but not trained, like batch norm's running statistics), child modules, and a train / eval mode.
// Names compose with dots the way PyTorch's state dicts do: a child "bn1" of a child "blocks.0.1" holds
// "blocks.0.1.bn1.weight". Those names are timm's, so weights exported from timm load without renaming.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace effnet {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Train mode (the default) or eval mode, for this module and every descendant.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Parameters and buffers together, in PyTorch's state_dict order: each module's parameters, then its
  // buffers, then its children's, depth first.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  // Moves (or converts) every parameter and buffer in place: handles held elsewhere see the new data.
  // Floating buffers follow `dtype`; integer buffers (num_batches_tracked) keep theirs.
  void to(Device device);
  void to(DType dtype);
  // Drops every parameter's gradient.
  void zero_grad();

 protected:
  // Registration returns the handle so that a subclass keeps a member pointing at the same tensor.
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    children_.emplace_back(name, child);
    return child;
  }

 private:
  enum class What { Parameters, Buffers, Both };
  void collect(const std::string& prefix, What what, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<std::pair<std::string, Tensor>> parameters_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Children applied in order, named "0", "1", ... (timm's nn.Sequential).
class Sequential : public Module {
 public:
  std::shared_ptr<Module> add(std::shared_ptr<Module> child);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }
  Module& operator[](size_t i) { return *modules_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace effnet
