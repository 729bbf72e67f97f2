// EFFNET_HOST_DEVICE marks small inline functions that both the CPU loops and the CUDA kernels call.
#pragma once

#if defined(__CUDACC__)
#define EFFNET_HOST_DEVICE __host__ __device__
#else
#define EFFNET_HOST_DEVICE
#endif
