// Neural-network ops that run as one fused kernel forward and one hand-written backward each (a single
// tape node), on the CPU and on CUDA (cuDNN): convolution, batch normalization (alone or fused with the
// SiLU after it), squeeze-excite's channel gate (alone or with the convolution after it), zero padding.
// The modules of layers/ are built on these and on tensor/ops.h.
#pragma once

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace effnet {

// y = conv(x, w) (+ bias). x [N, C, H, W], w [K, C / groups, R, S], bias [K] or undefined.
// The backward computes only the gradients its inputs need (no input gradient for the stem's image).
// Under autocast (tensor/autocast.h) the operands are cast to its 16-bit dtype first.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dGeometry& geometry);

// The output size of one spatial dim of a convolution (throws naming `op` when it would be below 1).
int64_t conv_output_size(int64_t input, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);

// Zero padding of the last two dims: [N, C, H, W] -> [N, C, top + H + bottom, left + W + right].
Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);

// Batch normalization of x [N, C, H, W] with per-channel gamma, beta [C].
// training: normalizes with the batch's mean and biased variance and updates running_mean and
// running_var (unbiased) in place with `momentum`; needs more than one value per channel.
// eval: normalizes with the running statistics.
// x float16 or bfloat16 with float32 gamma, beta and statistics is mixed precision: y has x's dtype, the
// statistics are computed and kept in float32.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps);

// silu(batch_norm(x, ...)) as one fused op. Training: one kernel writes the activation and one node keeps x
// and the statistics, not the batch norm's output, which the backward recomputes (a tensor of x's size less
// per pair). The result equals the unfused pair to rounding; for 16-bit x (CPU and CUDA) and float64 on the
// CPU the forward is the same bits. (The CPU's float32 loops use a vectorizing exponential; on CUDA, float32
// and float64 use effnet's kernels instead of cuDNN's batch norm.) Eval mode is one kernel when nothing
// needs a gradient (inference), else the unfused pair.
Tensor batch_norm_silu(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps);

// y = x * gate with x [N, C, H, W] and a per-channel gate [N, C, 1, 1] (squeeze-excite's): mul's forward, one
// node whose backward computes grad_x and grad_gate = sum_{H,W} grad_y x in one pass (mul's sums the
// product through a temporary of x's size). Equal to mul to rounding.
Tensor channel_gate(const Tensor& x, const Tensor& gate);

// conv2d(channel_gate(x, gate), w, bias, geometry) as one node that keeps x and the gate instead of their
// product (squeeze-excite's output, which the block's projection convolution reads): the backward recomputes
// the product for the weight's gradient, so a tensor of x's size less is held per block until the backward
// reaches it. The same bits as channel_gate and then conv2d, forward and backward. Under autocast, an x not
// yet in the autocast dtype runs as that pair (whose convolution casts the product).
Tensor channel_gate_conv2d(const Tensor& x, const Tensor& gate, const Tensor& w, const Tensor& bias,
                           const Conv2dGeometry& geometry);

}  // namespace effnet
