// Shapes and strides (in elements): element counts, contiguous strides, broadcasting and
// dimension normalisation, with errors that name the op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engine {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3]"

// Broadcast two shapes NumPy-style; throws "op: shapes [..] and [..] are not broadcastable".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that view a tensor of `shape`/`strides` as `target` (0 on broadcast dimensions).
Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& target);

// Maps a possibly negative dim into [0, ndim); throws naming the op when out of range.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace engine
