// Neural-network ops with fused kernels: softmax / log-softmax, LayerNorm (saving mean and
// rstd), and the stride = kernel convolution of a ViT patch embedding (patchify + GEMM).
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {

// Softmax over the last dimension of x.
Tensor softmax_last(const Tensor& x, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  const Tensor in = contiguous(x.detach());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).softmax(out.view(), in.view(), log);
  record(out, name, {x}, [so = Saved(out), log](const Tensor& g, const Needs&) -> Grads {
    const Tensor& y = so.get();
    Tensor grad_in = Tensor::empty(y.shape(), y.dtype(), y.device());
    backend_of(y).softmax_backward(grad_in.view(), contiguous(g).view(), y.view(), log);
    return {grad_in};
  });
  return out;
}

Tensor softmax_along(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_defined(name, x);
  check_floating(name, x);
  if (x.dim() == 0) return softmax_last(reshape(x, {1}), log).reshape({});
  dim = normalize_dim(dim, x.dim(), name);
  if (dim == x.dim() - 1) return softmax_last(x, log);
  return transpose(softmax_last(transpose(x, dim, -1), log), dim, -1);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_along(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_along(x, dim, true); }

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_defined("layer_norm", x);
  check_floating("layer_norm", x);
  ENGINE_CHECK(x.dim() >= 1, "layer_norm: input must be at least 1-D");
  const int64_t C = x.shape().back();
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    check_same_dtype("layer_norm", x, *p);
    check_same_device("layer_norm", x, *p);
    ENGINE_CHECK(p->shape() == Shape{C}, "layer_norm: ", p == &weight ? "weight" : "bias",
                 " of shape ", shape_str(p->shape()), " does not match normalized size ", C,
                 " of input ", shape_str(x.shape()));
  }
  const Tensor in = contiguous(x.detach());
  Shape rows_shape(x.shape().begin(), x.shape().end() - 1);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty(rows_shape, x.dtype(), x.device());  // (...)
  Tensor rstd = Tensor::empty(rows_shape, x.dtype(), x.device());  // (...) = 1/sqrt(var + eps)
  backend_of(x).layer_norm(out.view(), mean.view(), rstd.view(), in.view(), optional_view(weight),
                           optional_view(bias), eps);
  record(out, "layer_norm", {x, weight, bias},
         [sx = Saved(in), sm = Saved(mean), sr = Saved(rstd), sw = Saved(weight)](
             const Tensor& g, const Needs& n) -> Grads {
           const Tensor& v = sx.get();
           const Tensor& w = sw.get();
           const int64_t C = v.shape().back();
           Tensor gx = n[0] ? Tensor::empty(v.shape(), v.dtype(), v.device()) : Tensor();
           Tensor gw = n[1] ? Tensor::empty({C}, v.dtype(), v.device()) : Tensor();
           Tensor gb = n[2] ? Tensor::empty({C}, v.dtype(), v.device()) : Tensor();
           backend_of(v).layer_norm_backward(optional_view(gx), optional_view(gw),
                                             optional_view(gb), contiguous(g).view(), v.view(),
                                             sm.get().view(), sr.get().view(), optional_view(w));
           return {gx, gw, gb};
         });
  return out;
}

Tensor conv2d_patch(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_defined("conv2d_patch", x);
  check_defined("conv2d_patch", weight, "weight");
  check_rank("conv2d_patch", x, 4, "input (N, C, H, W)");
  check_rank("conv2d_patch", weight, 4, "weight (D, C, P, P)");
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const int64_t D = weight.shape()[0], P = weight.shape()[2];
  ENGINE_CHECK(weight.shape()[3] == P && weight.shape()[1] == C, "conv2d_patch: weight of shape ",
               shape_str(weight.shape()), " does not fit input ", shape_str(x.shape()),
               " (expected (D, ", C, ", P, P))");
  ENGINE_CHECK(P > 0 && H % P == 0 && W % P == 0, "conv2d_patch: image ", H, "x", W,
               " is not a whole number of ", P, "x", P, " patches");
  const int64_t gh = H / P, gw = W / P;
  // (N, C, gh, P, gw, P) -> (N, gh, gw, C, P, P) -> (N * gh * gw, C * P * P)
  const Tensor patches = reshape(permute(reshape(x, {N, C, gh, P, gw, P}), {0, 2, 4, 1, 3, 5}),
                                 {N * gh * gw, C * P * P});
  const Tensor out = linear(patches, reshape(weight, {D, C * P * P}), bias);  // (N*gh*gw, D)
  return permute(reshape(out, {N, gh, gw, D}), {0, 3, 1, 2});
}

}  // namespace engine
