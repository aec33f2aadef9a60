// Compute pipelines: one shared pipeline layout (set 0 = ten storage
// buffers, a push constant with the dispatch's parameter offset), shader
// modules from the embedded SPIR-V, pipelines specialized by constants.
// Each pipeline's VkPipelineCache data is one DiskCache entry (keyed by
// device, driver, SPIR-V hash and constants), so a warm start skips the
// driver's compile.
#pragma once

#include <vulkan/vulkan.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "backends/disk_cache.h"
#include "backends/pipeline_cache.h"
#include "backends/vulkan/vk_device.h"

namespace kiln::vk {

// Binding numbers every shader uses (shaders/common.glsl declares the same).
inline constexpr int kNumTensorSlots = 8;  // bindings 0..7: tensors and scratch
inline constexpr int kParamsBinding = 8;   // uint[]: per-dispatch parameters
inline constexpr int kErrorBinding = 9;    // DeviceErrorRecord
inline constexpr int kNumBindings = 10;

// What a kernel asks for: a shader and its specialization constants
// (constant_id i = spec[i]).
struct PipelineSpec {
  std::string shader;
  std::vector<int32_t> spec;
  std::string Key() const;  // for maps within one process
};

struct VkPipelineObj {
  VkDevice device = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
  ~VkPipelineObj() {
    if (pipeline) vkDestroyPipeline(device, pipeline, nullptr);
  }
};

class Pipelines {
 public:
  Pipelines(const Device& device, DiskCacheOptions disk);
  ~Pipelines();
  absl::Status Init();
  VkPipelineLayout layout() const { return layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }
  // The key of `spec` (with the SPIR-V's hash), and the factory the
  // PipelineCache calls for it: disk entry first, else a compile stored back.
  absl::StatusOr<PipelineKey> KeyOf(const PipelineSpec& spec) const;
  absl::StatusOr<std::unique_ptr<VkPipelineObj>> Create(const PipelineSpec& spec, const PipelineKey& key,
                                                        PipelineOrigin& origin);
  const DiskCache& disk() const { return disk_; }

 private:
  absl::StatusOr<VkShaderModule> Module(const std::string& name);
  absl::StatusOr<VkPipeline> Compile(const PipelineSpec& spec, VkPipelineCache cache, bool* hit);
  void PrintStatistics(const PipelineSpec& spec, VkPipeline p) const;
  const Device& device_;
  DiskCache disk_;
  std::string device_key_, driver_key_;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  std::mutex mu_;
  absl::flat_hash_map<std::string, VkShaderModule> modules_;
};

// A VkPipelineCache blob is usable by this device only when its header
// names the same vendor, device and pipeline-cache UUID.
bool PipelineCacheBlobMatches(const std::string& blob, const VkPhysicalDeviceProperties& props);

}  // namespace kiln::vk
