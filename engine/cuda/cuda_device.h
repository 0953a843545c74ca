// CUDA device discovery. Safe to call on machines without a GPU or driver: they report zero
// devices instead of failing.
#pragma once

namespace engine::cuda {

int device_count();
bool is_available();
void synchronize(int device);

}  // namespace engine::cuda
