// Device buffers: one VkBuffer + VkDeviceMemory each, in the memory type
// the BufferUsage asks for; mapped when host-visible.
#pragma once

#include <vulkan/vulkan.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "backends/vulkan/vk_device.h"

namespace kiln::vk {

class VkBuf : public Buffer {
 public:
  ~VkBuf() override;
  size_t size() const override { return size_; }
  // Only coherent host-visible memory is handed out: writes through it need
  // no flush (the backend still orders them with the queue).
  std::byte* host_data() const override { return mapped_; }
  VkBuffer handle() const { return buffer_; }
  bool device_local() const { return device_local_; }

  // `bytes` of memory for `usage`; ResourceExhausted names `label` and bytes.
  static absl::StatusOr<std::unique_ptr<VkBuf>> Create(const Device& device, size_t bytes, BufferUsage usage,
                                                       absl::string_view label);

 private:
  VkDevice device_ = VK_NULL_HANDLE;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  size_t size_ = 0;
  std::byte* mapped_ = nullptr;
  bool device_local_ = false;
};

}  // namespace kiln::vk
