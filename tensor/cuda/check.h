// Error checks for the CUDA runtime, cuBLAS and cuDNN: a failed call throws effnet::Error naming the file,
// the line, the call as written and the library's own description of the status.
//
//   EFFNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream));
//   kernel<<<grid, block, 0, stream>>>(...);
//   EFFNET_CUDA_CHECK_LAUNCH();
//
// cudaMalloc running out of memory is not an error here: tensor/cuda/allocator.cpp turns it into a retry
// of the caching allocator and, failing that, an OutOfMemoryError. Any other call whose library ran out
// of device or host memory throws OutOfMemoryError too, so that a caller that recovers from a full device
// (effnet_bench --max-batch) sees one kind of error whoever allocated.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "tensor/error.h"

namespace effnet::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* expr, const char* file,
                                          int line) {
  // Clears the runtime's last-error slot so that a later EFFNET_CUDA_CHECK_LAUNCH does not report this
  // failure again (sticky errors, which poison the context, stay whatever is done here).
  (void)cudaGetLastError();
  std::string message = ::effnet::detail::concat(file, ":", line, ": ", expr, " failed: ", cudaGetErrorName(status), " (",
                               cudaGetErrorString(status), ")");
  if (status == cudaErrorMemoryAllocation) throw OutOfMemoryError(message);
  throw Error(message);
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file,
                                            int line) {
  (void)cudaGetLastError();  // clears the runtime's last-error slot, as throw_cuda_error does
  std::string message = ::effnet::detail::concat(file, ":", line, ": ", expr, " failed: ", cublasGetStatusName(status), " (",
                               cublasGetStatusString(status), ")");
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemoryError(message);
  throw Error(message);
}

[[noreturn]] inline void throw_cudnn_error(cudnnStatus_t status, const char* expr, const char* file,
                                           int line) {
  (void)cudaGetLastError();
  std::string message = ::effnet::detail::concat(file, ":", line, ": ", expr, " failed: ", cudnnGetErrorString(status));
  if (status == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
      status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED) {
    throw OutOfMemoryError(message);
  }
  throw Error(message);
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
