// Error checks for the CUDA runtime, cuBLAS and cuDNN: a failed call throws effnet::Error naming the file,
// the line, the call as written and the library's own description of the status.
//
//   EFFNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream));
//   kernel<<<grid, block, 0, stream>>>(...);
//   EFFNET_CUDA_CHECK_LAUNCH();
//
// cudaMalloc running out of memory is not an error here: tensor/cuda/allocator.cpp turns it into a retry
// of the caching allocator and, failing that, an OutOfMemoryError.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "tensor/error.h"

namespace effnet::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* expr, const char* file,
                                          int line) {
  // Clears the runtime's last-error slot so that a later EFFNET_CUDA_CHECK_LAUNCH does not report this
  // failure again (sticky errors, which poison the context, stay whatever is done here).
  (void)cudaGetLastError();
  EFFNET_FAIL(file, ":", line, ": ", expr, " failed: ", cudaGetErrorName(status), " (",
              cudaGetErrorString(status), ")");
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file,
                                            int line) {
  EFFNET_FAIL(file, ":", line, ": ", expr, " failed: ", cublasGetStatusName(status), " (",
              cublasGetStatusString(status), ")");
}

[[noreturn]] inline void throw_cudnn_error(cudnnStatus_t status, const char* expr, const char* file,
                                           int line) {
  EFFNET_FAIL(file, ":", line, ": ", expr, " failed: ", cudnnGetErrorString(status));
}

}  // namespace effnet::cuda::detail

#define EFFNET_CUDA_CHECK(expr)                                                            \
  do {                                                                                     \
    cudaError_t effnet_status_ = (expr);                                                   \
    if (effnet_status_ != cudaSuccess)                                                     \
      ::effnet::cuda::detail::throw_cuda_error(effnet_status_, #expr, __FILE__, __LINE__); \
  } while (0)

#define EFFNET_CUBLAS_CHECK(expr)                                                            \
  do {                                                                                       \
    cublasStatus_t effnet_status_ = (expr);                                                  \
    if (effnet_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::effnet::cuda::detail::throw_cublas_error(effnet_status_, #expr, __FILE__, __LINE__); \
  } while (0)

#define EFFNET_CUDNN_CHECK(expr)                                                            \
  do {                                                                                      \
    cudnnStatus_t effnet_status_ = (expr);                                                  \
    if (effnet_status_ != CUDNN_STATUS_SUCCESS)                                             \
      ::effnet::cuda::detail::throw_cudnn_error(effnet_status_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: catches bad launch configurations at once (faults inside the kernel surface
// at the next synchronizing call).
#define EFFNET_CUDA_CHECK_LAUNCH()                                                                     \
  do {                                                                                                 \
    cudaError_t effnet_status_ = cudaGetLastError();                                                   \
    if (effnet_status_ != cudaSuccess)                                                                 \
      ::effnet::cuda::detail::throw_cuda_error(effnet_status_, "kernel launch", __FILE__, __LINE__);   \
  } while (0)
