// The project's own CPU matrix multiply: cache-blocked, packed, vectorised (AVX-512 or AVX2/FMA
// chosen at run time, portable C++ otherwise) and multithreaded with OpenMP.
// Results do not depend on the number of threads: every element of C is summed over k in the
// same blocked order whichever thread computes it.
#pragma once

#include <cstdint>

namespace engine::cpu {

// A batch of matrices addressed by strides (in elements), so transposed and strided views
// need no copy: element (b, r, c) lives at data[b * batch_stride + r * row_stride + c *
// col_stride].
template <typename T>
struct MatrixRef {
  T* data;
  int64_t row_stride;
  int64_t col_stride;
  int64_t batch_stride;
};

// C[b] = alpha * A[b] @ B[b] + beta * C[b] for b in [0, batch), with A[b]: (M, K), B[b]: (K, N),
// C[b]: (M, N). beta == 0 means C is write-only (its old contents, even NaN, are ignored).
// Supported T: float (SIMD kernels) and double (portable kernel, for gradient checks).
template <typename T>
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, MatrixRef<const T> A,
          MatrixRef<const T> B, T beta, MatrixRef<T> C);

// The plain definition that `gemm` computes, for readers and tests: the triple loop
//   C[b][i][j] = alpha * sum_k A[b][i][k] * B[b][k][j] + beta * C[b][i][j]
// with no blocking, packing, vectors or threads, summing each element in long double (so it is
// a reference for both the float and the double kernels). beta == 0 ignores C, as gemm does.
template <typename T>
void gemm_reference(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, MatrixRef<const T> A,
                    MatrixRef<const T> B, T beta, MatrixRef<T> C);

// Which float microkernel the running CPU uses: "avx512", "avx2" or "portable".
const char* gemm_kernel_name();

}  // namespace engine::cpu
