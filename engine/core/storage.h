// Storage: a block of device memory shared by all views of a tensor, with a version counter
// that in-place writes bump so autograd can detect saved tensors modified after saving.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/core/backend.h"
#include "engine/core/device.h"

namespace engine {

class Storage {
 public:
  Storage(Device device, size_t nbytes);  // allocated by the device's backend
  Storage(Device device, size_t nbytes,
          DataPtr data);  // memory from elsewhere (pinned host memory)

  void* data() const { return data_.get(); }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  Device device_;
  size_t nbytes_;
  DataPtr data_;
  uint64_t version_ = 0;
};

}  // namespace engine
