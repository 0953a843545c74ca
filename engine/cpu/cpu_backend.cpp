// CPU backend: 64-byte aligned allocation and GEMM dispatch to the project's own kernel.
#include "engine/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/cpu/gemm.h"

namespace engine::cpu {

DataPtr CpuBackend::allocate(size_t nbytes) {
  const size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  ENGINE_CHECK(p != nullptr, "cpu: out of memory allocating ", nbytes, " bytes");
  return DataPtr(p, [](void* q) { std::free(q); });
}

void CpuBackend::gemm(DType dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                      const GemmOperand& A, const GemmOperand& B, double beta,
                      const GemmOperand& C) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    engine::cpu::gemm<T>(
        batch, M, N, K, static_cast<T>(alpha),
        MatrixRef<const T>{static_cast<const T*>(A.data), A.row_stride, A.col_stride,
                           A.batch_stride},
        MatrixRef<const T>{static_cast<const T*>(B.data), B.row_stride, B.col_stride,
                           B.batch_stride},
        static_cast<T>(beta),
        MatrixRef<T>{static_cast<T*>(C.data), C.row_stride, C.col_stride, C.batch_stride});
  };
  if (dtype == DType::F32) return run(float{});
  if (dtype == DType::F64) return run(double{});
  fail("gemm: dtype ", dtype_name(dtype), " is not supported on the CPU (use f32 or f64)");
}

CpuBackend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace engine::cpu
