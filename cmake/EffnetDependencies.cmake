# CPU-side dependencies: OpenMP for parallel loops, a CBLAS (OpenBLAS) for GEMM.
find_package(OpenMP REQUIRED COMPONENTS CXX)

# OpenBLAS, preferably its OpenMP build (Debian's libopenblas-openmp-dev): then OpenBLAS and effnet's
# loops share one OpenMP thread pool. With the pthread build the two pools spin in turn on the same cores,
# which made EfficientNet-B0 on 2 cores 9x slower than one thread.
find_path(EFFNET_CBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp
  PATH_SUFFIXES openblas-openmp openblas openblas-pthread)
find_library(EFFNET_OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  PATH_SUFFIXES openblas-openmp openblas-pthread)
if(EFFNET_CBLAS_INCLUDE_DIR AND EFFNET_OPENBLAS_LIBRARY)
  set(EFFNET_BLAS_KIND "OpenBLAS (${EFFNET_OPENBLAS_LIBRARY})")
  set(EFFNET_HAVE_CBLAS ON)
else()
  set(EFFNET_BLAS_KIND "built-in blocked GEMM (OpenBLAS not found: apt install libopenblas-openmp-dev)")
  set(EFFNET_HAVE_CBLAS OFF)
endif()
