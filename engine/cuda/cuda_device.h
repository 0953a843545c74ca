// CUDA device discovery. Safe to call on machines without a GPU or driver: they report zero
// devices instead of failing.
#pragma once

#include <string>

namespace engine::cuda {

int device_count();
bool is_available();
// Why no device can be used ("" when one can): cudaGetDeviceCount's error as
// cudaGetErrorString words it (no driver, driver older than the runtime, ...), or that it
// counted none.
std::string why_unavailable();
void synchronize(int device);

// Elapsed device time between construction and elapsed_ms(), measured with CUDA events on the
// device's default stream.
class EventTimer {
 public:
  explicit EventTimer(int device);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  double elapsed_ms() const;  // waits for the work recorded so far

 private:
  int device_;
  void* start_;
  void* stop_;
};

}  // namespace engine::cuda
