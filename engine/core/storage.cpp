// Storage allocation through the owning device's backend.
#include "engine/core/storage.h"

namespace engine {

Storage::Storage(Device device, size_t nbytes)
    : device_(device), nbytes_(nbytes), data_(backend_for(device).allocate(nbytes)) {}

Storage::Storage(Device device, size_t nbytes, DataPtr data)
    : device_(device), nbytes_(nbytes), data_(std::move(data)) {}

}  // namespace engine
