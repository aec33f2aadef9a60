#include "backends/vulkan/vk_memory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kiln::vk {

VkBuf::~VkBuf() {
  if (mapped_) vkUnmapMemory(device_, memory_);
  if (buffer_) vkDestroyBuffer(device_, buffer_, nullptr);
  if (memory_) vkFreeMemory(device_, memory_, nullptr);
}

absl::StatusOr<std::unique_ptr<VkBuf>> VkBuf::Create(const Device& device, size_t bytes, BufferUsage usage,
                                                     absl::string_view label) {
  auto buf = std::unique_ptr<VkBuf>(new VkBuf());
  buf->device_ = device.handle();
  buf->size_ = bytes;
  // Kernels read whole 16-byte vectors at the end of a tensor; never 0 bytes.
  const VkDeviceSize alloc = std::max<VkDeviceSize>(16, (bytes + 15) / 16 * 16);
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.size = alloc;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
              VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  auto oom = [&](absl::string_view what) {
    return absl::ResourceExhaustedError(absl::StrCat("vulkan: out of memory allocating ", bytes, " bytes (",
                                                     BufferUsageName(usage), ") for ", label, ": ", what));
  };
  VkResult r = vkCreateBuffer(buf->device_, &bci, nullptr, &buf->buffer_);
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) return oom(VkResultName(r));
  if (r != VK_SUCCESS) return VkError(r, absl::StrCat("vkCreateBuffer of ", bytes, " bytes for ", label));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(buf->device_, buf->buffer_, &req);

  const VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  const bool unified = device.facts().props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ||
                       device.facts().props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
  // Candidate (required, preferred) pairs, best first.
  std::vector<std::pair<VkMemoryPropertyFlags, VkMemoryPropertyFlags>> tries;
  switch (usage) {
    case BufferUsage::kWeights:
    case BufferUsage::kArena:
    case BufferUsage::kState:
      // Device-local; on unified memory also mapped, so uploads are memcpys.
      if (unified) tries.push_back({local | host, VK_MEMORY_PROPERTY_HOST_CACHED_BIT});
      tries.push_back({local, 0});
      tries.push_back({0, 0});
      break;
    case BufferUsage::kInput:
      // Written by the host each run: host-visible, device-local when it is
      // both (BAR / unified memory).
      tries.push_back({host, local});
      tries.push_back({local, 0});
      break;
    case BufferUsage::kOutput:
    case BufferUsage::kStaging:
      tries.push_back({host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0});
      tries.push_back({host, 0});
      break;
  }
  r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
  int type = -1;
  for (const auto& [required, preferred] : tries) {
    type = device.FindMemoryType(req.memoryTypeBits, required, preferred);
    if (type < 0) continue;
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = static_cast<uint32_t>(type);
    r = vkAllocateMemory(buf->device_, &ai, nullptr, &buf->memory_);
    if (r == VK_SUCCESS) break;
    // Out of that heap: a later candidate may still fit (e.g. BAR memory is small).
  }
  if (r != VK_SUCCESS) {
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY || type < 0) {
      return oom(type < 0 ? "no suitable memory type" : VkResultName(r));
    }
    return VkError(r, absl::StrCat("vkAllocateMemory of ", bytes, " bytes for ", label));
  }
  const VkMemoryPropertyFlags flags = device.facts().memory.memoryTypes[type].propertyFlags;
  buf->device_local_ = flags & local;
  r = vkBindBufferMemory(buf->device_, buf->buffer_, buf->memory_, 0);
  if (r != VK_SUCCESS) return VkError(r, absl::StrCat("vkBindBufferMemory for ", label));
  if ((flags & host) == host) {
    void* p = nullptr;
    r = vkMapMemory(buf->device_, buf->memory_, 0, VK_WHOLE_SIZE, 0, &p);
    if (r != VK_SUCCESS) return VkError(r, absl::StrCat("vkMapMemory for ", label));
    buf->mapped_ = static_cast<std::byte*>(p);
  }
  return buf;
}

}  // namespace kiln::vk
