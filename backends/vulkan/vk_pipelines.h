// Compute pipelines: one shared pipeline layout (set 0 = ten storage
// buffers, a push constant with the dispatch's parameter offset), shader
// modules from the embedded SPIR-V, pipelines specialized by constants and
// created through a VkPipelineCache that persists on disk.
#pragma once

#include <vulkan/vulkan.h>

#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "backends/vulkan/vk_device.h"

namespace kiln::vk {

// Binding numbers every shader uses (shaders/common.glsl declares the same).
inline constexpr int kNumTensorSlots = 8;  // bindings 0..7: tensors and scratch
inline constexpr int kParamsBinding = 8;   // uint[]: per-dispatch parameters
inline constexpr int kErrorBinding = 9;    // DeviceErrorRecord
inline constexpr int kNumBindings = 10;

// What identifies a pipeline: a shader and its specialization constants
// (constant_id i = spec[i]).
struct PipelineSpec {
  std::string shader;
  std::vector<int32_t> spec;
  std::string Key() const;
};

struct VkPipelineObj {
  VkPipeline pipeline = VK_NULL_HANDLE;
  bool from_disk = false;  // the driver found it in the cache loaded from disk
};

class Pipelines {
 public:
  // `cache_file`: where the VkPipelineCache blob lives ("" = no disk cache).
  Pipelines(const Device& device, std::string cache_file);
  ~Pipelines();
  absl::Status Init();
  VkPipelineLayout layout() const { return layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }
  // Compiles a pipeline (thread-safe; the caller caches by Key()).
  absl::StatusOr<VkPipelineObj> Create(const PipelineSpec& spec);
  // Writes the cache blob back to disk (when it grew).
  void Save();
  bool loaded_from_disk() const { return loaded_bytes_ > 0; }

 private:
  absl::StatusOr<VkShaderModule> Module(const std::string& name);
  const Device& device_;
  std::string cache_file_;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  size_t loaded_bytes_ = 0;
  bool dirty_ = false;
  std::mutex mu_;
  absl::flat_hash_map<std::string, VkShaderModule> modules_;
};

// The on-disk VkPipelineCache blob: read (validated against the device's
// vendor, device id and cache UUID; a stale or corrupt file is ignored) and
// written atomically. The one place to redirect to a shared disk cache.
std::vector<char> LoadPipelineCacheBlob(const std::string& path, const VkPhysicalDeviceProperties& props);
void StorePipelineCacheBlob(const std::string& path, const std::vector<char>& blob);

}  // namespace kiln::vk
