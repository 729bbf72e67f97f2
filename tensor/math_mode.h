// Process-wide switches of how the CUDA backend computes, read at each call (as PyTorch's
// torch.backends.cudnn.allow_tf32 / torch.backends.cuda.matmul.allow_tf32, here one switch for both, and
// torch.backends.cudnn.benchmark). The CPU ignores them.
//
//   allow_tf32       float32 convolutions and matrix products may run on TF32 tensor cores, which round
//                    their inputs to 10 mantissa bits (about 1e-3 relative error) and are several times
//                    faster. Off by default: float32 results then match the CPU to about 1e-5.
//   cudnn_benchmark  each new convolution problem chooses its cuDNN algorithm by timing the candidates on
//                    the real operands instead of taking cuDNN's heuristic ranking: costly once per problem
//                    (and per batch size), sometimes faster after. Starts as EFFNET_CUDNN_BENCHMARK=1 says.
#pragma once

namespace effnet {

void set_allow_tf32(bool allow);
bool allow_tf32();

void set_cudnn_benchmark(bool on);
bool cudnn_benchmark();

}  // namespace effnet
