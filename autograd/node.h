// The tape. Each op that runs with grad mode on and an input that requires grad adds a Node:
//
//   out = f(a, b)        records   Node f' with next_edges = [edge to a's producer, edge to b's producer]
//                                  out.grad_fn = f', out.output_nr = 0
//
// An Edge names the node that produced an input and which of its outputs it was; a leaf that requires
// grad is represented by its AccumulateGrad node (the sink that adds into leaf.grad). backward() (engine.cpp)
// walks the nodes from the root in reverse creation order, calling apply(grad_outputs) -> grad_inputs.
//
// Accumulation rule: the engine sums gradients flowing into the same (node, output); AccumulateGrad adds
// into .grad (+=), so two backward passes without zeroing accumulate, as in PyTorch.
//
// A node saves only what its backward needs (captured in its closure) and drops it after backward has run
// once (unless retain_graph), so activations are freed as the backward pass moves down the network.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace effnet::autograd {

class Node;

struct Edge {
  std::shared_ptr<Node> node;  // null: this input needs no gradient
  int input_nr = 0;            // which output of `node` (its slot among node's grad_outputs)
};

class Node {
 public:
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  virtual std::string name() const = 0;
  // One gradient per output of the forward op (undefined where nothing flowed) -> one per next edge.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) = 0;
  // Frees what the node saved for backward (called by the engine after apply unless retain_graph).
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  int num_outputs = 1;
  uint64_t sequence_nr;  // creation order: later nodes run first in backward
};

// A node whose backward is a closure. The closure holds the saved tensors; release_saved() destroys it.
// This is how every op in tensor/ops*.cpp records itself, and how a fused layer (conv, batch norm,
// cross-entropy) registers as one node with a hand-written backward:
//
//   Tensor y = ...forward...;
//   autograd::record("my_op", {x, w}, {y}, [x, w](std::vector<Tensor>&& g) {
//     return std::vector<Tensor>{grad_wrt_x(g[0], w), grad_wrt_w(g[0], x)};
//   });
class FunctionNode : public Node {
 public:
  using Backward = std::function<std::vector<Tensor>(std::vector<Tensor>&&)>;
  FunctionNode(std::string name, Backward backward) : name_(std::move(name)), backward_(std::move(backward)) {}
  std::string name() const override { return name_; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override;
  void release_saved() override { backward_ = nullptr; }

 private:
  std::string name_;
  Backward backward_;
};

// The sink for a leaf: adds the incoming gradient into leaf.grad. Holds the leaf weakly (the leaf owns it).
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : leaf_(leaf) { num_outputs = 1; }
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// True when grad mode is on and some input requires grad: the op must record a node.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `backward` as the grad_fn of `outputs` with one edge per input (in order). Does nothing when
// needs_grad(inputs) is false. The backward returns one gradient per input (undefined = none).
void record(const std::string& name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            FunctionNode::Backward backward);

// Attaches an already-built node (a custom Node subclass) the same way.
void record_node(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs);

// Runs backward from `roots` with the given output gradients (same shapes as the roots).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph = false);

// Gradients of `outputs` (weighted by grad_outputs) with respect to `inputs`, returned rather than
// accumulated into .grad. Inputs that the outputs do not depend on get undefined tensors.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                         const std::vector<Tensor>& inputs, bool retain_graph = false);

}  // namespace effnet::autograd
