#include "tensor/storage.h"

#include "tensor/backend.h"

namespace effnet {

std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device, bool pinned) {
  if (pinned) {
    EFFNET_CHECK(device.is_cpu(), "pinned memory is host memory; asked for it on ", device.str());
    const Backend& cuda = backend(Device::cuda(0), "pinned host allocation");
    return cuda.allocate_pinned_host(nbytes);
  }
  return backend(device, "allocate").allocate(nbytes, device);
}

}  // namespace effnet
