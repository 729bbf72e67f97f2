// The CUDA kernel entry points that fill effnet::cuda_backend() (tensor/cuda/backend.cu). Each one keeps the
// contract of its field in tensor/backend.h, queues its work on the context stream of the operands' device
// and returns without waiting, except where a host buffer must be ready (copy_with_host to the CPU).
#pragma once

#include <cstdint>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace effnet::cuda {

// context.cpp: cuDNN's legacy API and effnet's 32-bit-indexed kernels take at most this many elements per
// operand in one call (2^31 - 1); conv.cpp and batch_norm_kernels.cu process larger tensors in chunks of
// whole images. Tests lower it (0 restores the default) to run the chunking on small tensors.
int64_t max_elements_per_call();
void set_max_elements_per_call(int64_t elements);

// elementwise.cu
void fill(const Tensor& dst, double value);
void copy(const Tensor& dst, const Tensor& src);
void random(const Tensor& dst, RandomKind kind, double a, double b, uint64_t seed, uint64_t offset);
void unary(UnaryOp op, const Tensor& x, double alpha, const Tensor& out);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void addcmul(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& out);

// reduce.cu
void reduce(ReduceOp op, const Tensor& x, const Tensor& out);
void argmax(const Tensor& x, int64_t dim, const Tensor& out);

// softmax.cu
void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out);
void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x);

// matmul.cpp
void matmul(const Tensor& a, const Tensor& b, const Tensor& out);

// conv.cpp
void conv2d(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, const Tensor& y);
void conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Conv2dGeometry& g,
                           const Tensor& grad_x);
void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dGeometry& g,
                            const Tensor& grad_w);

// conv.cpp runs two kinds of convolution outside cuDNN, which its legacy API runs far below memory speed,
// while own_conv_kernels() (default on; EFFNET_CUDNN_ONLY=1 starts a run with everything in cuDNN, for
// comparison):
// depthwise_conv.cu: depthwise convolutions (groups = C = K, 3x3 or 5x5 filters) in effnet's own kernels,
// for dense operands in one layout with fewer than 2^31 elements per image and output pixels in the batch;
bool own_conv_kernels();
void set_own_conv_kernels(bool enabled);
bool depthwise_conv_supported(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g);
void depthwise_conv2d(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, const Tensor& y);
void depthwise_conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Conv2dGeometry& g,
                                     const Tensor& grad_x);
void depthwise_conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dGeometry& g,
                                      const Tensor& grad_w);
// pointwise_conv.cpp: 1x1 convolutions (stride 1, no padding, one group) with channels innermost
// (channels-last, or one pixel per image) as cuBLAS matrix products.
bool pointwise_conv_supported(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g);
void pointwise_conv2d(const Tensor& x, const Tensor& w, const Tensor& y);
void pointwise_conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Tensor& grad_x);
void pointwise_conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Tensor& grad_w);

// batch_norm.cpp: cuDNN for float32 / float64 without an activation; the rest goes to effnet's kernels
void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                      const Tensor& running_var, double momentum, double eps, Activation act, const Tensor& y,
                      const Tensor& save_mean, const Tensor& save_invstd);
void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& save_mean, const Tensor& save_invstd, double eps, Activation act,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta);

// batch_norm_kernels.cu: effnet's own kernels, for float16 / bfloat16 x (float32 per-channel tensors) and for
// batch norm fused with its activation in any floating dtype
void own_batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                          const Tensor& running_var, double momentum, double eps, Activation act, const Tensor& y,
                          const Tensor& save_mean, const Tensor& save_invstd);
void own_batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& save_mean, const Tensor& save_invstd, Activation act,
                             const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta);
// Eval mode without gradients (the CUDA row's batch_norm_eval).
void own_batch_norm_eval(const Tensor& x, const Tensor& scale, const Tensor& shift, Activation act, const Tensor& y);

// channel_gate.cu
void channel_gate_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gate, const Tensor& grad_x,
                           const Tensor& grad_gate);

// loss.cu: cross-entropy from logits
void cross_entropy(const Tensor& logits, const Tensor& targets, const Tensor& weight, double smoothing,
                   const Tensor& loss, const Tensor& target_weight);
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& weight, double smoothing,
                            const Tensor& grad_loss, const Tensor& grad_logits);

// optim.cu: multi-tensor optimizer steps and gradient clipping
void optimizer_step(const std::vector<MultiTensorStep>& groups);
void global_norm(const std::vector<Tensor>& tensors, const Tensor& out);
void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm);

// transfer.cpp
void copy_with_host(const Tensor& dst, const Tensor& src);
void synchronize(Device device);

}  // namespace effnet::cuda
