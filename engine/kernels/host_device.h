// ENGINE_HOST_DEVICE marks the functions of engine/kernels/ that both backends compile: for the
// host and the device under nvcc, plain inline functions in the C++ compiler.
#pragma once

#ifdef __CUDACC__
#define ENGINE_HOST_DEVICE __host__ __device__
#else
#define ENGINE_HOST_DEVICE
#endif
