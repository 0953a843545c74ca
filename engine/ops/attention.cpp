// Fused scaled dot-product attention on the CPU (see attention.h): per query row, scores in
// double, max-subtracted exponentials, the output and the row's log-sum-exp; the backward
// recomputes each probability from the log-sum-exp. Rows are split over threads by (n, h)
// pairs, each writing only its own slices, so results do not depend on the thread count.
#include "engine/ops/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "engine/core/threading.h"
#include "engine/kernels/dispatch.h"
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {

struct Sizes {
  int64_t N, H, Tq, Tk, d, dv;
  double scale;
};

// out (N, H, Tq, dv) and lse (N, H, Tq); all operands contiguous, mask (N, Tk) or null.
template <typename T>
void forward_rows(const Sizes& s, const T* q, const T* k, const T* v, const T* mask, T* out,
                  double* lse) {
  parallel_for(s.N * s.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> p(s.Tk), acc(s.dv);
    for (int64_t nh = begin; nh < end; ++nh) {
      const int64_t n = nh / s.H;
      const T* kh = k + nh * s.Tk * s.d;
      const T* vh = v + nh * s.Tk * s.dv;
      for (int64_t i = 0; i < s.Tq; ++i) {
        const T* qi = q + (nh * s.Tq + i) * s.d;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < s.Tk; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < s.d; ++c) dot += double(qi[c]) * double(kh[j * s.d + c]);
          p[j] = dot * s.scale + (mask ? double(mask[n * s.Tk + j]) : 0.0);
          m = std::max(m, p[j]);
        }
        double l = 0;
        for (int64_t j = 0; j < s.Tk; ++j) l += (p[j] = std::exp(p[j] - m));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < s.Tk; ++j)
          for (int64_t c = 0; c < s.dv; ++c) acc[c] += p[j] * double(vh[j * s.dv + c]);
        T* oi = out + (nh * s.Tq + i) * s.dv;
        for (int64_t c = 0; c < s.dv; ++c) oi[c] = static_cast<T>(acc[c] / l);
        lse[nh * s.Tq + i] = m + std::log(l);
      }
    }
  });
}

// Gradients (any may be null): dq, dk, dv like q, k, v; dmask_nh (N, H, Tk) per head, summed
// over heads by the caller. ds = p (dp - D) with dp_j = <g_i, v_j> and D = <g_i, out_i>.
template <typename T>
void backward_rows(const Sizes& s, const T* q, const T* k, const T* v, const T* mask, const T* out,
                   const double* lse, const T* g, T* dq, T* dk, T* dv, double* dmask_nh) {
  parallel_for(s.N * s.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> ds(s.Tk), dk_acc(s.Tk * s.d), dv_acc(s.Tk * s.dv), dq_acc(s.d);
    for (int64_t nh = begin; nh < end; ++nh) {
      const int64_t n = nh / s.H;
      const T* kh = k + nh * s.Tk * s.d;
      const T* vh = v + nh * s.Tk * s.dv;
      std::fill(dk_acc.begin(), dk_acc.end(), 0.0);
      std::fill(dv_acc.begin(), dv_acc.end(), 0.0);
      if (dmask_nh) std::fill(dmask_nh + nh * s.Tk, dmask_nh + (nh + 1) * s.Tk, 0.0);
      for (int64_t i = 0; i < s.Tq; ++i) {
        const T* qi = q + (nh * s.Tq + i) * s.d;
        const T* gi = g + (nh * s.Tq + i) * s.dv;
        const T* oi = out + (nh * s.Tq + i) * s.dv;
        double D = 0;
        for (int64_t c = 0; c < s.dv; ++c) D += double(gi[c]) * double(oi[c]);
        for (int64_t j = 0; j < s.Tk; ++j) {
          double dot = 0, dp = 0;
          for (int64_t c = 0; c < s.d; ++c) dot += double(qi[c]) * double(kh[j * s.d + c]);
          for (int64_t c = 0; c < s.dv; ++c) dp += double(gi[c]) * double(vh[j * s.dv + c]);
          const double score = dot * s.scale + (mask ? double(mask[n * s.Tk + j]) : 0.0);
          const double p = std::exp(score - lse[nh * s.Tq + i]);
          for (int64_t c = 0; c < s.dv; ++c) dv_acc[j * s.dv + c] += p * double(gi[c]);
          ds[j] = p * (dp - D);
          if (dmask_nh) dmask_nh[nh * s.Tk + j] += ds[j];
        }
        std::fill(dq_acc.begin(), dq_acc.end(), 0.0);
        for (int64_t j = 0; j < s.Tk; ++j)
          for (int64_t c = 0; c < s.d; ++c) {
            dq_acc[c] += ds[j] * double(kh[j * s.d + c]);
            dk_acc[j * s.d + c] += ds[j] * double(qi[c]);
          }
        if (dq)
          for (int64_t c = 0; c < s.d; ++c)
            dq[(nh * s.Tq + i) * s.d + c] = static_cast<T>(dq_acc[c] * s.scale);
      }
      if (dk)
        for (int64_t x = 0; x < s.Tk * s.d; ++x)
          dk[nh * s.Tk * s.d + x] = static_cast<T>(dk_acc[x] * s.scale);
      if (dv)
        for (int64_t x = 0; x < s.Tk * s.dv; ++x)
          dv[nh * s.Tk * s.dv + x] = static_cast<T>(dv_acc[x]);
    }
  });
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
template <typename T>
T* data_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

Tensor scaled_dot_product_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& key_mask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.shape().back()));
  Tensor scores = mul(matmul(q, transpose(k, -1, -2)), scale);  // (N, H, Tq, Tk)
  if (key_mask.defined())
    scores = add(scores, reshape(key_mask, {key_mask.shape()[0], 1, 1, key_mask.shape()[1]}));
  return matmul(softmax(scores, -1), v);
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_mask) {
  const char* op = "scaled_dot_product_attention";
  for (const Tensor* t : {&q, &k, &v}) {
    check_defined(op, *t);
    check_rank(op, *t, 4);
    check_floating(op, *t);
    check_same_device(op, q, *t);
    check_same_dtype(op, q, *t);
  }
  const Shape &qs = q.shape(), &ks = k.shape(), &vs = v.shape();
  ENGINE_CHECK(ks[0] == qs[0] && ks[1] == qs[1] && ks[3] == qs[3] && vs[0] == qs[0] &&
                   vs[1] == qs[1] && vs[2] == ks[2],
               op, ": shapes q ", shape_str(qs), ", k ", shape_str(ks), ", v ", shape_str(vs),
               " are not (N, H, Tq, d), (N, H, Tk, d), (N, H, Tk, dv)");
  if (key_mask.defined()) {
    check_same_device(op, q, key_mask);
    check_same_dtype(op, q, key_mask);
    ENGINE_CHECK(key_mask.shape() == Shape({qs[0], ks[2]}), op, ": key mask of shape ",
                 shape_str(key_mask.shape()), " is not (N, Tk) = (", qs[0], ", ", ks[2], ")");
  }
  if (!q.device().is_cpu()) return scaled_dot_product_attention_composed(q, k, v, key_mask);

  const Sizes s{qs[0], qs[1], qs[2], ks[2], qs[3], vs[3], 1.0 / std::sqrt(double(qs[3]))};
  const Tensor qc = contiguous(q.detach()), kc = contiguous(k.detach()),
               vc = contiguous(v.detach());
  const Tensor mc = key_mask.defined() ? contiguous(key_mask.detach()) : Tensor();
  Tensor out = Tensor::empty({s.N, s.H, s.Tq, s.dv}, q.dtype(), q.device());
  Tensor lse = Tensor::empty({s.N, s.H, s.Tq}, DType::F64, q.device());
  dispatch_floating(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    forward_rows<T>(s, qc.data<T>(), kc.data<T>(), vc.data<T>(), data_or_null<T>(mc), out.data<T>(),
                    lse.data<double>());
  });
  record(
      out, op, {q, k, v, key_mask},
      [s, sq = Saved(qc), sk = Saved(kc), sv = Saved(vc), sm = Saved(mc), so = Saved(out),
       sl = Saved(lse)](const Tensor& grad_out, const Needs& needs) -> Grads {
        const Tensor& qv = sq.get();
        const Tensor g = contiguous(grad_out);
        Tensor dq = needs[0] ? Tensor::empty(qv.shape(), qv.dtype(), qv.device()) : Tensor();
        Tensor dk = needs[1] ? Tensor::empty(sk.get().shape(), qv.dtype(), qv.device()) : Tensor();
        Tensor dv = needs[2] ? Tensor::empty(sv.get().shape(), qv.dtype(), qv.device()) : Tensor();
        Tensor dmask_nh =
            needs[3] ? Tensor::empty({s.N, s.H, s.Tk}, DType::F64, qv.device()) : Tensor();
        dispatch_floating(qv.dtype(), "scaled_dot_product_attention backward", [&](auto tag) {
          using T = decltype(tag);
          backward_rows<T>(s, qv.data<T>(), sk.get().data<T>(), sv.get().data<T>(),
                           data_or_null<T>(sm.get()), so.get().data<T>(), sl.get().data<double>(),
                           g.data<T>(), data_or_null<T>(dq), data_or_null<T>(dk),
                           data_or_null<T>(dv), data_or_null<double>(dmask_nh));
        });
        // The mask's gradient: the heads' sums, in head order (deterministic).
        Tensor dmask = needs[3] ? sum(dmask_nh, {1}).to(qv.dtype()) : Tensor();
        return {dq, dk, dv, dmask};
      });
  return out;
}

}  // namespace engine
