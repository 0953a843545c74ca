// The loop behind every CPU elementwise kernel: walks N operands of one shape with their own
// strides, merging dimensions that are contiguous for all operands, and hands the innermost runs
// to a typed body. Large loops are split over threads by element ranges; each element is
// computed the same way whichever thread does it.
#pragma once

#include <array>
#include <cstdint>

#include "engine/core/backend.h"
#include "engine/core/threading.h"

namespace engine::cpu {

// body(ptrs, strides, n): ptrs[k] points at operand k's first element of a run of n elements,
// strides[k] is operand k's stride (in elements) along the run.
template <size_t N, typename Body>
void for_each_strided(const Shape& shape, const std::array<const Shape*, N>& strides,
                      const std::array<char*, N>& bases, const std::array<size_t, N>& elem_sizes,
                      Body&& body, bool parallel = true) {
  // Drop size-1 dimensions, then merge a dimension into its inner neighbour when every operand
  // steps through both as one.
  Shape dims;
  std::array<Shape, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return;
    if (shape[d] == 1) continue;
    dims.push_back(shape[d]);
    for (size_t k = 0; k < N; ++k) st[k].push_back((*strides[k])[d]);
  }
  for (size_t d = dims.size(); d-- > 1;) {
    bool mergeable = true;
    for (size_t k = 0; k < N; ++k) mergeable &= st[k][d - 1] == st[k][d] * dims[d];
    if (!mergeable) continue;
    dims[d - 1] *= dims[d];
    dims.erase(dims.begin() + d);
    for (size_t k = 0; k < N; ++k) {
      st[k][d - 1] = st[k][d];
      st[k].erase(st[k].begin() + d);
    }
  }
  if (dims.empty()) {  // a single element
    std::array<int64_t, N> zero{};
    body(bases, zero, int64_t{1});
    return;
  }
  const size_t ndim = dims.size();
  const int64_t inner = dims.back();
  int64_t total = 1;
  for (int64_t s : dims) total *= s;
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = st[k].back();

  auto run_range = [&](int64_t begin, int64_t end) {
    Shape index(ndim);
    int64_t rest = begin;
    for (size_t d = ndim; d-- > 0;) {
      index[d] = rest % dims[d];
      rest /= dims[d];
    }
    for (int64_t i = begin; i < end;) {
      std::array<char*, N> ptrs;
      for (size_t k = 0; k < N; ++k) {
        int64_t offset = 0;
        for (size_t d = 0; d < ndim; ++d) offset += index[d] * st[k][d];
        ptrs[k] = bases[k] + offset * static_cast<int64_t>(elem_sizes[k]);
      }
      const int64_t n = std::min(inner - index[ndim - 1], end - i);
      body(ptrs, inner_strides, n);
      i += n;
      index[ndim - 1] += n;
      for (size_t d = ndim - 1; d > 0 && index[d] == dims[d]; --d) {
        index[d] = 0;
        ++index[d - 1];
      }
    }
  };
  if (parallel)
    parallel_for(total, int64_t{1} << 15, run_range);
  else
    run_range(0, total);
}

}  // namespace engine::cpu
