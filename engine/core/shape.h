// Shapes and strides (in elements): element counts, contiguous strides, broadcasting and
// dimension normalisation, with errors that name the op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engine {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);

// The most bytes one tensor may take: 2^48 (256 TiB), beyond any machine's memory, with room
// for every product of its sizes, strides and item size to stay exact in 64 bits.
constexpr int64_t kMaxTensorBytes = int64_t{1} << 48;

// The element count of `shape`, every product checked: a negative size, or a count whose
// `item_size`-byte elements pass kMaxTensorBytes, is an error naming `what` (the file, tensor or
// op the shape came from). For shapes from files, configs and command lines, where a size can
// be anything.
int64_t checked_numel(const Shape& shape, int64_t item_size, const std::string& what);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3]"

// Broadcast two shapes NumPy-style; throws "op: shapes [..] and [..] are not broadcastable".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that view a tensor of `shape`/`strides` as `target` (0 on broadcast dimensions).
Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& target);

// Maps a possibly negative dim into [0, ndim); throws naming the op when out of range.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace engine
