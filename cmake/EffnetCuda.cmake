# Decides whether the CUDA backend is built (EFFNET_CUDA = AUTO | ON | OFF) and finds cuBLAS and cuDNN.
#
# cuDNN is looked for in CUDNN_ROOT, in the CUDA toolkit, and in the pip wheel nvidia-cudnn-cu13
# (the GPU machines have PyTorch's wheels and no system cuDNN).
set(EFFNET_WITH_CUDA OFF)
if(NOT EFFNET_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    find_package(CUDAToolkit QUIET)
    find_path(EFFNET_CUDNN_INCLUDE_DIR cudnn.h
      HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
    find_library(EFFNET_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
      HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
    if(CUDAToolkit_FOUND AND TARGET CUDA::cublas AND EFFNET_CUDNN_INCLUDE_DIR AND EFFNET_CUDNN_LIBRARY)
      set(EFFNET_WITH_CUDA ON)
    else()
      set(_why "CUDA toolkit found: ${CUDAToolkit_FOUND}; cuDNN header: ${EFFNET_CUDNN_INCLUDE_DIR}; cuDNN library: ${EFFNET_CUDNN_LIBRARY}")
    endif()
  else()
    set(_why "no CUDA compiler (nvcc) found")
  endif()
  if(EFFNET_CUDA STREQUAL "ON" AND NOT EFFNET_WITH_CUDA)
    message(FATAL_ERROR "EFFNET_CUDA=ON but the CUDA backend cannot be built: ${_why}")
  elseif(NOT EFFNET_WITH_CUDA)
    message(STATUS "effnet: building without CUDA (${_why})")
  endif()
endif()

if(EFFNET_WITH_CUDA)
  # sm_90 machine code for H100/H200 plus compute_90 PTX that newer cards JIT-compile ("90" = 90-real + 90-virtual).
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  # CMake 3.25 does not know that nvcc 13 accepts C++20: it silently drops CUDA_STANDARD 20, and with a
  # C++20 target holding .cu files the Ninja generator stops ("requires the language dialect CUDA20").
  # Telling it the flag fixes both; newer CMakes know it already.
  enable_language(CUDA)
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_EXTENSIONS OFF)
  add_library(effnet_cudnn INTERFACE)
  target_include_directories(effnet_cudnn INTERFACE ${EFFNET_CUDNN_INCLUDE_DIR})
  target_link_libraries(effnet_cudnn INTERFACE ${EFFNET_CUDNN_LIBRARY})
  set(EFFNET_CUDA_FLAGS --expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter)
  if(EFFNET_WERROR)
    list(APPEND EFFNET_CUDA_FLAGS -Werror=all-warnings -Xcompiler=-Werror)
  endif()
endif()
