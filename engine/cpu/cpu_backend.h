// The CPU backend: reference kernels for every op, multithreaded with OpenMP. Kernel bodies are
// split by family into elementwise.cpp, reduce.cpp, softmax.cpp, layer_norm.cpp, index.cpp,
// random.cpp, adamw.cpp and cpu_backend.cpp (allocation and GEMM).
#pragma once

#include "engine/core/backend.h"

namespace engine::cpu {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu(); }
  DataPtr allocate(size_t nbytes) override;

  void copy(const View& dst, const View& src) override;
  void fill(const View& dst, double value) override;
  void unary(UnaryOp op, const View& out, const View& in, double a, double b) override;
  void binary(BinaryOp op, const View& out, const View& lhs, const View& rhs) override;
  void where(const View& out, const View& cond, const View& lhs, const View& rhs) override;
  void reduce(ReduceOp op, const View& out, const View& in, int reduced_dims) override;
  double squared_norm(const std::vector<View>& tensors) override;
  void gemm(DType dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
            const GemmOperand& A, const GemmOperand& B, double beta, const GemmOperand& C) override;
  void softmax(const View& out, const View& in, bool log) override;
  void softmax_backward(const View& grad_in, const View& grad_out, const View& out,
                        bool log) override;
  void layer_norm(const View& out, const View& mean, const View& rstd, const View& in,
                  const View& weight, const View& bias, double eps) override;
  void layer_norm_backward(const View& grad_in, const View& grad_weight, const View& grad_bias,
                           const View& grad_out, const View& in, const View& mean, const View& rstd,
                           const View& weight) override;
  void index_select(const View& out, const View& in, int dim, const View& index) override;
  void gather(const View& out, const View& in, int dim, const View& index) override;
  void scatter_add(const View& out, int dim, const View& index, const View& src) override;
  void random(RandomKind kind, const View& out, const RandomParams& params) override;
  void adamw_multi_step(const std::vector<View>& params, const std::vector<View>& grads,
                        const std::vector<View>& exp_avgs, const std::vector<View>& exp_avg_sqs,
                        const AdamWHyper& hyper) override;
};

CpuBackend& cpu_backend();

}  // namespace engine::cpu
