// The backward pass.
//
// 1. From the roots, find every node reachable through next_edges and count, for each node, how many
//    edges point at it (its dependencies).
// 2. Seed the roots' gradient buffers, then repeatedly run the ready node (all dependencies delivered)
//    with the highest sequence number, i.e. the most recently created: a reverse topological order.
// 3. A node's outputs are summed into the buffers of the nodes its edges point at; AccumulateGrad nodes
//    add into leaf.grad. Saved tensors are released right after each node runs, unless retain_graph.
//
// autograd::grad() runs the same loop but, instead of accumulating into .grad, captures the gradient
// arriving at each requested tensor and returns it.
#include <queue>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/ops.h"

namespace effnet::autograd {

Edge gradient_edge(const Tensor& t) {
  if (t.grad_fn()) return Edge{t.grad_fn(), t.output_nr()};
  TensorImpl* impl = t.impl();
  if (!impl->grad_accumulator) impl->grad_accumulator = std::make_shared<AccumulateGrad>(t.shared_impl());
  return Edge{impl->grad_accumulator, 0};
}

namespace {

struct LaterFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

// A gradient to hand back instead of accumulating: what arrives at output `slot` of `node`.
struct Capture {
  Node* node;
  int slot;
};

std::vector<Tensor> execute(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                            bool retain_graph, bool accumulate, const std::vector<Capture>& captures) {
  EFFNET_CHECK(roots.size() == grad_roots.size(), "backward: ", roots.size(), " outputs but ", grad_roots.size(),
               " gradients");
  std::vector<Edge> root_edges;
  for (size_t k = 0; k < roots.size(); ++k) {
    const Tensor& root = roots[k];
    EFFNET_CHECK(root.defined() && root.requires_grad(), "backward: output ", k, " (", root.str(),
                 ") does not require grad: nothing it depends on requires grad, or it was computed under "
                 "NoGradGuard");
    EFFNET_CHECK(grad_roots[k].defined() && grad_roots[k].shape() == root.shape(), "backward: the gradient for ",
                 root.str(), " is ", grad_roots[k].str(), "; expected the same shape");
    root_edges.push_back(gradient_edge(root));
  }

  // 1. Dependencies.
  std::unordered_map<Node*, int> dependencies;
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (const Edge& e : root_edges) {
    if (!seen[e.node.get()]) {
      seen[e.node.get()] = true;
      stack.push_back(e.node.get());
    }
  }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const Edge& e : node->next_edges) {
      if (!e.node) continue;
      ++dependencies[e.node.get()];
      if (!seen[e.node.get()]) {
        seen[e.node.get()] = true;
        stack.push_back(e.node.get());
      }
    }
  }

  // 2. Seed.
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  NoGradGuard no_grad;
  auto deliver = [&buffers](const Edge& e, const Tensor& g) {
    std::vector<Tensor>& slots = buffers[e.node.get()];
    if (slots.empty()) slots.resize(static_cast<size_t>(e.node->num_outputs));
    Tensor& slot = slots[static_cast<size_t>(e.input_nr)];
    slot = slot.defined() ? add(slot, g) : g;
  };
  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  for (size_t k = 0; k < roots.size(); ++k) deliver(root_edges[k], grad_roots[k]);
  for (const Edge& e : root_edges) {
    if (dependencies[e.node.get()] == 0) {
      ready.push(e.node.get());
      dependencies[e.node.get()] = -1;  // queued (a node can be the root of two outputs)
    }
  }

  // 3. Run.
  std::vector<Tensor> captured(captures.size());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    // A node whose every incoming gradient was undefined still runs its bookkeeping below, so that the
    // nodes after it see their dependency counts reach zero.
    std::vector<Tensor> grads = std::move(buffers[node]);
    buffers.erase(node);
    grads.resize(static_cast<size_t>(node->num_outputs));
    for (size_t c = 0; c < captures.size(); ++c) {
      if (captures[c].node == node) captured[c] = grads[static_cast<size_t>(captures[c].slot)];
    }
    const bool is_sink = dynamic_cast<AccumulateGrad*>(node) != nullptr;
    if (is_sink && !accumulate) continue;
    bool any = false;
    for (const Tensor& g : grads) any = any || g.defined();
    std::vector<Tensor> input_grads;
    if (any) input_grads = node->apply(std::move(grads));
    if (!retain_graph) node->release_saved();
    if (!is_sink && any) {
      EFFNET_CHECK(input_grads.size() == node->next_edges.size(), "backward of ", node->name(), " returned ",
                   input_grads.size(), " gradients for ", node->next_edges.size(), " inputs");
    }
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.node) continue;
      if (i < input_grads.size() && input_grads[i].defined()) deliver(e, input_grads[i]);
      if (--dependencies[e.node.get()] == 0) ready.push(e.node.get());
    }
  }
  return captured;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph) {
  execute(roots, grad_roots, retain_graph, /*accumulate=*/true, {});
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                         const std::vector<Tensor>& inputs, bool retain_graph) {
  std::vector<Capture> captures;
  for (const Tensor& t : inputs) {
    EFFNET_CHECK(t.defined() && t.requires_grad(), "autograd::grad: input ", t.str(), " does not require grad");
    const Edge e = gradient_edge(t);
    captures.push_back({e.node.get(), e.input_nr});
  }
  return execute(outputs, grad_outputs, retain_graph, /*accumulate=*/false, captures);
}

}  // namespace effnet::autograd
