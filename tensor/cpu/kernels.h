// The CPU kernels behind the dispatch table (tensor/backend.h). Loops run in parallel with OpenMP once a
// tensor is large enough to repay the threads; GEMM goes to OpenBLAS when it was found at configure time.
#pragma once

#include "tensor/backend.h"
#include "tensor/caching_allocator.h"

namespace effnet::cpu {

std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
// The CPU's caching allocator (one for the process; `device` is the CPU).
CachingAllocator& host_allocator(Device device);
void fill(const Tensor& dst, double value);
void copy(const Tensor& dst, const Tensor& src);
void random(const Tensor& dst, RandomKind kind, double a, double b, uint64_t seed, uint64_t offset);
void unary(UnaryOp op, const Tensor& x, double alpha, const Tensor& out);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void addcmul(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& out);
void reduce(ReduceOp op, const Tensor& x, const Tensor& out);
void argmax(const Tensor& x, int64_t dim, const Tensor& out);
void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out);
void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x);
void matmul(const Tensor& a, const Tensor& b, const Tensor& out);
void conv2d(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, const Tensor& y);
void conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Conv2dGeometry& g, const Tensor& grad_x);
void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dGeometry& g, const Tensor& grad_w);
void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                      const Tensor& running_var, double momentum, double eps, Activation act, const Tensor& y,
                      const Tensor& save_mean, const Tensor& save_invstd);
void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& save_mean, const Tensor& save_invstd, double eps, Activation act,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta);
void batch_norm_eval(const Tensor& x, const Tensor& scale, const Tensor& shift, Activation act, const Tensor& y);
void channel_gate_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gate, const Tensor& grad_x,
                           const Tensor& grad_gate);
// loss.cpp: cross-entropy from logits
void cross_entropy(const Tensor& logits, const Tensor& targets, const Tensor& weight, double smoothing,
                   const Tensor& loss, const Tensor& target_weight);
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& weight, double smoothing,
                            const Tensor& grad_loss, const Tensor& grad_logits);
// optim.cpp: multi-tensor optimizer steps and gradient clipping
void optimizer_step(const std::vector<MultiTensorStep>& groups);
void global_norm(const std::vector<Tensor>& tensors, const Tensor& out);
void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm);

}  // namespace effnet::cpu
