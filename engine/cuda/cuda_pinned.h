// Page-locked ("pinned") host memory, which the GPU reads by DMA: host->device copies from it
// need no staging copy by the driver. Blocks are cached (cudaHostAlloc is slow), like device
// memory.
#pragma once

#include <cstddef>

#include "engine/core/backend.h"

namespace engine::cuda {

// `nbytes` of pinned host memory; throws when none can be had.
DataPtr allocate_pinned(size_t nbytes);

// Whether `ptr` lies in page-locked host memory that CUDA knows of.
bool is_pinned(const void* ptr);

}  // namespace engine::cuda
