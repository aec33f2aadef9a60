// Instance, physical-device facts and the logical device with its one
// compute queue.
#pragma once

#include <vulkan/vulkan.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/backend.h"

namespace kiln::vk {

// "what: VK_ERROR_..." as a status; VK_ERROR_DEVICE_LOST becomes DeviceLostError.
absl::Status VkError(VkResult r, absl::string_view what);
const char* VkResultName(VkResult r);

// What a physical device can do, read once.
struct DeviceFacts {
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties props{};
  VkPhysicalDeviceMemoryProperties memory{};
  uint32_t queue_family = 0;
  uint32_t timestamp_valid_bits = 0;
  uint32_t subgroup_size = 0, min_subgroup = 0, max_subgroup = 0;
  bool subgroup_size_control = false;
  bool subgroup_arithmetic = false;
  bool subgroup_shuffle = false;  // flash_attn_decode.comp sums a key's dot product across lanes
  bool storage16 = false, storage8 = false;
  bool float16 = false, int8 = false, float64 = false, int64 = false;
  bool bfloat16 = false;  // VK_KHR_shader_bfloat16
  bool timeline = false;
  bool coopmat_nv = false, coopmat_khr = false;
  bool creation_feedback = false;  // VK_EXT_pipeline_creation_feedback / 1.3
  // KILN_VULKAN_PIPELINE_STATS=1 on a device with
  // VK_KHR_pipeline_executable_properties: each pipeline created prints the
  // driver's statistics of it (registers, shared memory, ...) to stderr.
  bool executable_stats = false;
  // Kernels built once with shapes and flags as parameters instead of one
  // pipeline per specialization: the default on CPU devices (lavapipe),
  // whose LLVM compiles cost more than the specialization gains.
  bool generic_kernels = false;
  std::vector<std::string> coopmat_shapes;  // "16x16x16 f16->f32", ...
  std::vector<std::string> extensions;
  DeviceInfo info;
  bool Has(absl::string_view ext) const;
};

// The Vulkan instance, shared by the devices made from it.
class Instance {
 public:
  static absl::StatusOr<std::shared_ptr<Instance>> Create();
  ~Instance();
  VkInstance handle() const { return instance_; }
  // Every physical device with a compute queue, described.
  absl::StatusOr<std::vector<DeviceFacts>> Devices() const;

 private:
  VkInstance instance_ = VK_NULL_HANDLE;
};

// The preferred device: the first discrete GPU, else integrated, else any.
int PreferredDevice(const std::vector<DeviceFacts>& devices);

// A logical device with one compute queue.
class Device {
 public:
  static absl::StatusOr<std::unique_ptr<Device>> Create(std::shared_ptr<Instance> instance,
                                                        const DeviceFacts& facts);
  ~Device();
  VkDevice handle() const { return device_; }
  VkQueue queue() const { return queue_; }
  const DeviceFacts& facts() const { return facts_; }
  // Picks a memory type with all of `required` (and as many of `preferred`
  // as possible) among `type_bits`; -1 when none.
  int FindMemoryType(uint32_t type_bits, VkMemoryPropertyFlags required,
                     VkMemoryPropertyFlags preferred) const;

 private:
  std::shared_ptr<Instance> instance_;
  DeviceFacts facts_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
};

}  // namespace kiln::vk
