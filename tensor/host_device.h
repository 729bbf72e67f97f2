// EFFNET_HOST_DEVICE marks small inline functions that both the CPU loops and the CUDA kernels call.
#pragma once

#if defined(__CUDACC__)
#define EFFNET_HOST_DEVICE __host__ __device__
#else
#define EFFNET_HOST_DEVICE
#endif

// Asks nvcc to unroll the loop that follows (a host compiler would warn about the pragma).
#if defined(__CUDA_ARCH__)
#define EFFNET_UNROLL _Pragma("unroll")
#else
#define EFFNET_UNROLL
#endif
