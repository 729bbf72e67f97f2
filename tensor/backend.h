// The dispatch table. Each device type fills one Backend: a row of function pointers, one per kernel.
// tensor/ops.cpp calls backend(device).<kernel>(...) and never branches on the device itself; the CPU row
// lives in tensor/cpu/backend.cpp, the CUDA row in tensor/cuda/backend.cu. A CPU-only build has no CUDA
// row, and asking for it throws an error that names the op.
//
// Kernel contracts (checked by ops.cpp before the call, so kernels only assert):
//   - operands share the device; dtypes as stated per kernel;
//   - `out` is allocated by the caller with the final shape; it may be a strided view (in-place ops)
//     unless stated otherwise;
//   - elementwise inputs are already broadcast to out's shape (expanded views with stride 0).
#pragma once

#include <cstdint>
#include <memory>

#include "tensor/tensor.h"

namespace effnet {

enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Sigmoid, Silu, Tanh, Relu,
  AddScalar,  // x + alpha
  MulScalar,  // x * alpha
  PowScalar,  // x ^ alpha
};

enum class BinaryOp {
  Add, Sub, Mul, Div, Pow,
  Eq, Ne, Lt, Le, Gt, Ge,  // 1 or 0
  // Fused backward products: (a, b) = (saved tensor, incoming gradient)
  SiluGrad,     // b * s * (1 + a * (1 - s)), s = sigmoid(a); a = x
  SigmoidGrad,  // b * a * (1 - a); a = sigmoid(x)
  TanhGrad,     // b * (1 - a^2); a = tanh(x)
  ReluGrad,     // a > 0 ? b : 0; a = x
};

enum class ReduceOp { Sum, Max };

// What batch norm applies to its output in the same pass (the BN + SiLU fusion of tensor/nn.h).
enum class Activation { None, Silu };

// A 2-D convolution's geometry. Padding is symmetric here; TensorFlow-style 'same' padding, which is
// asymmetric for stride 2, pads the input explicitly first (layers/conv2d.cpp).
struct Conv2dGeometry {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};
enum class RandomKind { Uniform, Normal };
class CachingAllocator;
struct MultiTensorStep;  // one optimizer step of a parameter group: optim/multi_tensor.h

struct Backend {
  const char* name;

  // Device memory for a new Storage (caching allocator on CUDA).
  std::shared_ptr<Storage> (*allocate)(size_t nbytes, Device device);
  // Page-locked host memory (CUDA only; null elsewhere).
  std::shared_ptr<Storage> (*allocate_pinned_host)(size_t nbytes);
  // The caching allocator behind `allocate` (its statistics, limit and cache: tensor/memory.h).
  CachingAllocator& (*caching_allocator)(Device device);

  // dst[...] = value. Any dtype, any strides.
  void (*fill)(const Tensor& dst, double value);
  // dst[...] = cast(src[...]). Same shape, any strides, any two dtypes (int64 <-> float included).
  void (*copy)(const Tensor& dst, const Tensor& src);
  // Between this backend's device and the CPU: both contiguous, same dtype and size. (CUDA only.)
  void (*copy_with_host)(const Tensor& dst, const Tensor& src);
  // Contiguous floating dst; numbers of Philox counters [offset, offset + numel).
  void (*random)(const Tensor& dst, RandomKind kind, double a, double b, uint64_t seed, uint64_t offset);

  void (*unary)(UnaryOp op, const Tensor& x, double alpha, const Tensor& out);
  void (*binary)(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
  // out = a + b c (addcmul), one pass; inputs broadcast like binary's. The product is rounded to the dtype
  // before the sum and never fused into an FMA, so out has the bits of add(a, mul(b, c)).
  void (*addcmul)(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& out);
  // out has x's rank with size 1 on the reduced dims (keepdim form); contiguous; x's dtype, or float32 for a
  // float16 / bfloat16 x (the float32 result, not rounded: mean divides before it rounds).
  void (*reduce)(ReduceOp op, const Tensor& x, const Tensor& out);
  // out: int64, x's shape with size 1 at dim; contiguous.
  void (*argmax)(const Tensor& x, int64_t dim, const Tensor& out);
  // Contiguous x and out of the same shape; `log` selects log-softmax.
  void (*softmax)(const Tensor& x, int64_t dim, bool log, const Tensor& out);
  // grad_x = y * (grad_y - sum(grad_y * y))         (softmax, y = its output)
  // grad_x = grad_y - exp(y) * sum(grad_y)          (log-softmax, y = its output); all contiguous
  void (*softmax_backward)(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x);
  // out[i] = a[i] @ b[i] for 3-D a [B, M, K], b [B, K, N], out [B, M, N] (contiguous). The batch stride of
  // a or b may be 0 (one matrix shared by the batch). In each operand the last two dims are row-major
  // (stride[2] == 1, stride[1] >= cols) or column-major (stride[1] == 1, stride[2] >= rows).
  void (*matmul)(const Tensor& a, const Tensor& b, const Tensor& out);

  // ---- convolution, NCHW, one floating dtype (16-bit ones accumulate in float32); all tensors dense in one
  // memory format, the input's: row-major, or channels-last (Tensor::suggest_memory_format; the weight's
  // [K, C / groups, R, S] then lies as K R S C):
  //   x [N, C, H, W], w [K, C / groups, R, S], y [N, K, P, Q],
  //   P = (H + 2 pad_h - dilation_h (R - 1) - 1) / stride_h + 1, Q likewise.
  //   y[n, k, p, q] = sum_{c in group(k), r, s} w[k, c, r, s] x[n, c, p stride_h - pad_h + r dilation_h, ...]
  // Each kernel overwrites its output (no accumulation).
  void (*conv2d)(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, const Tensor& y);
  void (*conv2d_backward_input)(const Tensor& grad_y, const Tensor& w, const Conv2dGeometry& g,
                                const Tensor& grad_x);
  void (*conv2d_backward_weight)(const Tensor& grad_y, const Tensor& x, const Conv2dGeometry& g,
                                 const Tensor& grad_w);

  // ---- batch normalization over (N, H, W) per channel, NCHW; M = N H W. x, y, grad_y and grad_x dense in
  // x's memory format (row-major or channels-last), the per-channel tensors contiguous. One floating dtype,
  // or mixed precision: x, y, grad_y, grad_x float16 / bfloat16 and the per-channel tensors float32.
  // Training: mean_c and var_c (biased) of the batch; z = gamma_c (x - mean_c) invstd_c + beta_c with
  // invstd_c = 1 / sqrt(var_c + eps), and y = z (Activation::None) or y = silu(z) (Activation::Silu; z is
  // rounded to x's dtype first, as the unfused pair would store it); running_mean and running_var
  // (unbiased: var_c M / (M - 1)) move by running = (1 - momentum) running + momentum batch, in place;
  // save_mean and save_invstd get mean_c and invstd_c for the backward.
  void (*batch_norm_train)(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                           const Tensor& running_var, double momentum, double eps, Activation act, const Tensor& y,
                           const Tensor& save_mean, const Tensor& save_invstd);
  // With xhat = (x - mean) invstd and dz = grad_y (None) or dz = silu'(z) grad_y (Silu: z recomputed from x,
  // gamma, beta and the saved statistics; beta is read only then):  grad_beta = sum dz,
  // grad_gamma = sum dz xhat,  grad_x = gamma invstd / M (M dz - grad_beta - xhat grad_gamma)
  // (sums over N, H, W per channel). eps is the forward's (cuDNN wants the same value in both passes).
  void (*batch_norm_backward)(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& save_mean, const Tensor& save_invstd, double eps, Activation act,
                              const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta);
  // Eval mode, no gradient: y = z or silu(z) with z = x scale_c + shift_c, computed in x's compute dtype
  // (float32 for 16-bit x; z rounded to x's dtype before silu, as in training); scale and shift [C]
  // contiguous in the compute dtype.
  void (*batch_norm_eval)(const Tensor& x, const Tensor& scale, const Tensor& shift, Activation act,
                          const Tensor& y);

  // ---- the backward of a per-channel gate y = x gate_nc (squeeze-excite's; tensor/nn.h's channel_gate):
  // grad_x = grad_y gate_nc and grad_gate_nc = sum_{H,W} grad_y x, in one pass over grad_y and x. x, grad_y
  // and grad_x [N, C, H, W] dense in x's memory format; gate and grad_gate [N, C, 1, 1] contiguous; one
  // floating dtype (16-bit ones computed and summed in float32, rounded once).
  void (*channel_gate_backward)(const Tensor& grad_y, const Tensor& x, const Tensor& gate, const Tensor& grad_x,
                                const Tensor& grad_gate);

  // ---- cross-entropy from logits (losses/cross_entropy.cpp; kernels in cpu/loss.cpp and cuda/loss.cu).
  // logits z [N, C] contiguous, floating; targets t [N] int64 contiguous, each in [0, C) (checked by the
  // caller); weight w [C] of z's dtype, or undefined for w = 1; smoothing e in [0, 1]. Per row, with
  // m = max_c z_c, log p_c = (z_c - m) - log sum_j exp(z_j - m) and W = sum_c w_c:
  //   loss_i          = (1 - e) w_t (-log p_t) + (e / C) sum_c w_c (-log p_c)   (the sum only when e > 0)
  //   target_weight_i = w_t                      (the mean's denominator is sum_i target_weight_i)
  void (*cross_entropy)(const Tensor& logits, const Tensor& targets, const Tensor& weight, double smoothing,
                        const Tensor& loss, const Tensor& target_weight);
  // grad_logits_ic = grad_loss_i (p_c ((1 - e) w_t + e W / C) - (1 - e) w_t [c = t] - e w_c / C);
  // grad_loss [N] and grad_logits [N, C] contiguous, grad_logits overwritten.
  void (*cross_entropy_backward)(const Tensor& logits, const Tensor& targets, const Tensor& weight,
                                 double smoothing, const Tensor& grad_loss, const Tensor& grad_logits);

  // ---- optimizers (optim/; kernels in cpu/optim.cpp and cuda/optim.cu). Multi-tensor: one call covers
  // every tensor of the list (on CUDA a few launches over a device table of them, never one per tensor).
  // Updates every parameter of every group's step.params in place by its step.rule: the equations are in
  // optim/update_math.h, the arguments in optim/multi_tensor.h. One call for all of an optimizer's groups:
  // whatever the update allocates (CUDA: each group's device table and scratch) is allocated for every
  // group before any update runs, so running out of memory leaves every parameter as it was.
  void (*optimizer_step)(const std::vector<MultiTensorStep>& groups);
  // out (one element, the tensors' dtype) = sqrt(sum of x^2 over every element of every tensor), summed in
  // float64 in a fixed order (the same bits on every call). Tensors contiguous, of one dtype.
  void (*global_norm)(const std::vector<Tensor>& tensors, const Tensor& out);
  // Every tensor *= min(max_norm / (norm + 1e-6), 1) in place, with `norm` (one element, the tensors'
  // dtype) read on the device: no host round trip. A NaN norm scales by NaN (PyTorch's clip_grad_norm_).
  void (*clip_by_norm)(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm);

  // Waits for the device's queued work.
  void (*synchronize)(Device device);
};

// The row for a device type. Throws when effnet was built without it; `op` names the caller.
const Backend& backend(Device device, const char* op = "");

const Backend& cpu_backend();
#if defined(EFFNET_WITH_CUDA)
const Backend& cuda_backend();
#endif

}  // namespace effnet
