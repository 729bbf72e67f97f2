// Process-wide precision switches, read by the CUDA backend at each call (as PyTorch's
// torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32, here one switch for both).
//
//   allow_tf32   float32 convolutions and matrix products may run on TF32 tensor cores, which round their
//                inputs to 10 mantissa bits (about 1e-3 relative error) and are several times faster. Off
//                by default: float32 results then match the CPU to about 1e-5. The CPU ignores it.
#pragma once

namespace effnet {

void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace effnet
