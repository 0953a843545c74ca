// CUDA GEMM through cuBLAS: row-major operands mapped onto cuBLAS's column-major API, with the
// precision of engine::matmul_precision() for f32 (f64 always runs in f64):
//   fp32: fp32 inputs, fp32 multiplies (CUBLAS_COMPUTE_32F);
//   tf32: fp32 inputs on TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32);
//   bf16: A and B converted to dense bf16 buffers on the device, bf16 tensor cores with fp32
//         accumulation and an fp32 output (CUDA_R_16BF inputs, CUBLAS_COMPUTE_32F).
// linear() folds its bias in through beta = 1 on an output pre-filled with the bias.
#include <climits>

#include "engine/core/precision.h"
#include "engine/cuda/cuda_kernels.cuh"

namespace engine::cuda {

namespace {

// cuBLAS wants each operand with unit stride along one dimension (row- or column-major).
struct BlasOperand {
  const void* data;
  bool row_major;  // else column-major
  int64_t ld;
  int64_t batch_stride;
};

}  // namespace

void CudaBackend::gemm(DType dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                       const GemmOperand& A, const GemmOperand& B, double beta,
                       const GemmOperand& C) {
  ENGINE_CHECK(dtype == DType::F32 || dtype == DType::F64, "gemm: dtype ", dtype_name(dtype),
               " is not supported on cuda (use f32 or f64)");
  ENGINE_CHECK(C.col_stride == 1 || N == 1, "gemm: the output must be row-major on cuda");
  if (batch == 0 || M == 0 || N == 0) return;
  activate();
  const View c_view{C.data, dtype, {batch, M, N}, {C.batch_stride, C.row_stride, 1}, device()};
  if (K == 0) {  // C = beta C
    if (beta == 0)
      fill(c_view, 0.0);
    else
      unary(UnaryOp::Affine, c_view, c_view, beta, 0.0);
    return;
  }
  for (int64_t size : {batch, M, N, K})
    ENGINE_CHECK(size <= INT_MAX, "gemm: size ", size, " exceeds cuBLAS's 32-bit limit");
  const MatmulPrecision precision =
      dtype == DType::F32 ? matmul_precision() : MatmulPrecision::FP32;
  const bool bf16_inputs = precision == MatmulPrecision::BF16;
  const DType operand_dtype = bf16_inputs ? DType::BF16 : dtype;
  std::vector<DataPtr> staged;

  // Maps a (rows x cols) operand to a BLAS layout. It is copied dense and row-major when neither
  // stride is 1, or converted to bf16 for bf16 inputs; a matrix shared by the batch is copied once.
  auto to_blas = [&](const GemmOperand& X, int64_t rows, int64_t cols) {
    const int64_t rs = rows == 1 ? cols : X.row_stride;
    const int64_t cs = cols == 1 ? 1 : X.col_stride;
    if (!bf16_inputs) {
      if (cs == 1 && rs >= std::max<int64_t>(cols, 1))
        return BlasOperand{X.data, true, rs, X.batch_stride};
      if (rs == 1 && cs >= std::max<int64_t>(rows, 1))
        return BlasOperand{X.data, false, cs, X.batch_stride};
    }
    const int64_t copies = X.batch_stride == 0 ? 1 : batch;
    const Shape shape{copies, rows, cols};
    staged.push_back(allocate(copies * rows * cols * dtype_size(operand_dtype)));
    device_copy(
        View{staged.back().get(), operand_dtype, shape, contiguous_strides(shape), device()},
        View{X.data, dtype, shape, {X.batch_stride, X.row_stride, X.col_stride}, device()});
    return BlasOperand{staged.back().get(), true, cols, copies == 1 ? 0 : rows * cols};
  };
  const BlasOperand a = to_blas(A, M, K), b = to_blas(B, K, N);
  // Row-major C = A B is column-major C^T = B^T A^T: a row-major operand read as
  // column-major is already transposed (op N); a column-major one needs op T.
  const cublasOperation_t op_b = b.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t op_a = a.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  const int64_t ldc = M == 1 ? N : C.row_stride;
  for (int64_t ld : {a.ld, b.ld, ldc})
    ENGINE_CHECK(ld <= INT_MAX, "gemm: leading dimension ", ld, " exceeds cuBLAS's 32-bit limit");

  std::lock_guard<std::mutex> lock(state_->blas_mutex);
  if (!state_->blas) CUBLAS_CHECK(cublasCreate(&state_->blas));
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  if (dtype == DType::F64) {
    CUBLAS_CHECK(cublasDgemmStridedBatched(
        state_->blas, op_b, op_a, m, n, k, &alpha, static_cast<const double*>(b.data),
        static_cast<int>(b.ld), b.batch_stride, static_cast<const double*>(a.data),
        static_cast<int>(a.ld), a.batch_stride, &beta, static_cast<double*>(C.data),
        static_cast<int>(ldc), C.batch_stride, static_cast<int>(batch)));
    return;
  }
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const cudaDataType_t input_type = bf16_inputs ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute =
      precision == MatmulPrecision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      state_->blas, op_b, op_a, m, n, k, &alpha_f, b.data, input_type, static_cast<int>(b.ld),
      b.batch_stride, a.data, input_type, static_cast<int>(a.ld), a.batch_stride, &beta_f, C.data,
      CUDA_R_32F, static_cast<int>(ldc), C.batch_stride, static_cast<int>(batch), compute,
      CUBLAS_GEMM_DEFAULT));
}

}  // namespace engine::cuda
