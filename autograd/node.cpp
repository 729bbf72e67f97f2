// Tape nodes and how ops attach them to their outputs.
#include "autograd/node.h"

#include <atomic>

#include "autograd/grad_mode.h"
#include "tensor/ops.h"

namespace effnet::autograd {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
}

Node::Node() : sequence_nr(next_sequence_nr++) {}

std::vector<Tensor> FunctionNode::apply(std::vector<Tensor>&& grad_outputs) {
  EFFNET_CHECK(backward_ != nullptr, "backward through ", name_,
               " a second time: its saved tensors were freed by the first backward "
               "(pass retain_graph = true to the first call to keep them)");
  return backward_(std::move(grad_outputs));
}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grad_outputs) {
  std::shared_ptr<TensorImpl> leaf = leaf_.lock();
  const Tensor& g = grad_outputs[0];
  if (!leaf || !g.defined()) return {};
  Tensor target(leaf);
  EFFNET_CHECK(g.shape() == leaf->shape, "AccumulateGrad: gradient ", g.str(), " does not match the leaf ",
               target.str());
  if (!leaf->grad.defined()) {
    // Take the incoming buffer when nothing else can see it; otherwise copy (it may be a broadcast view).
    const bool exclusive = g.is_contiguous() && g.storage().use_count() == 1;
    leaf->grad = exclusive ? g.detach() : g.clone();
  } else {
    leaf->grad.add_(g);
  }
  return {};
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

Edge gradient_edge(const Tensor& t);  // engine.cpp

void record_node(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs) {
  if (!needs_grad(inputs)) return;
  node->next_edges.clear();
  for (const Tensor& t : inputs) {
    node->next_edges.push_back(t.defined() && t.requires_grad() ? gradient_edge(t) : Edge{});
  }
  node->num_outputs = static_cast<int>(outputs.size());
  for (size_t k = 0; k < outputs.size(); ++k) {
    TensorImpl* impl = outputs[k].impl();
    impl->grad_fn = node;
    impl->output_nr = static_cast<int>(k);
    impl->requires_grad = true;
  }
}

void record(const std::string& name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            FunctionNode::Backward backward) {
  if (!needs_grad(inputs)) return;
  record_node(std::make_shared<FunctionNode>(name, std::move(backward)), inputs, outputs);
}

}  // namespace effnet::autograd
