# CPU-side dependencies: OpenMP for parallel loops, a CBLAS (OpenBLAS) for GEMM.
find_package(OpenMP REQUIRED COMPONENTS CXX)

# OpenBLAS: Debian installs cblas.h under an alternative-specific folder.
find_path(EFFNET_CBLAS_INCLUDE_DIR cblas.h
  PATH_SUFFIXES openblas-pthread openblas openblas-openmp x86_64-linux-gnu/openblas-pthread)
find_library(EFFNET_OPENBLAS_LIBRARY NAMES openblas
  PATH_SUFFIXES openblas-pthread openblas-openmp)
if(EFFNET_CBLAS_INCLUDE_DIR AND EFFNET_OPENBLAS_LIBRARY)
  set(EFFNET_BLAS_KIND "OpenBLAS (${EFFNET_OPENBLAS_LIBRARY})")
  set(EFFNET_HAVE_CBLAS ON)
else()
  set(EFFNET_BLAS_KIND "built-in blocked GEMM (OpenBLAS not found: apt install libopenblas-dev)")
  set(EFFNET_HAVE_CBLAS OFF)
endif()
