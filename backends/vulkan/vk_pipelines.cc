#include "backends/vulkan/vk_pipelines.h"

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/stable_hash.h"
#include "backends/vulkan/vk_shaders.h"

namespace kiln::vk {

std::string PipelineSpec::Key() const { return absl::StrCat(shader, "[", absl::StrJoin(spec, ","), "]"); }

bool PipelineCacheBlobMatches(const std::string& blob, const VkPhysicalDeviceProperties& props) {
  // VkPipelineCacheHeaderVersionOne: length, version, vendor, device, UUID.
  if (blob.size() < 32) return false;
  uint32_t words[4];
  std::memcpy(words, blob.data(), 16);
  return words[0] >= 32 && words[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && words[2] == props.vendorID &&
         words[3] == props.deviceID && std::memcmp(blob.data() + 16, props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

Pipelines::Pipelines(const Device& device, DiskCacheOptions disk) : device_(device), disk_(std::move(disk)) {
  const auto& p = device.facts().props;
  device_key_ = absl::StrFormat("%04x:%04x %s", p.vendorID, p.deviceID, p.deviceName);
  driver_key_ = absl::StrFormat("%08x ", p.driverVersion);
  for (uint8_t b : p.pipelineCacheUUID) absl::StrAppendFormat(&driver_key_, "%02x", b);
}

Pipelines::~Pipelines() {
  VkDevice d = device_.handle();
  for (auto& [name, m] : modules_) vkDestroyShaderModule(d, m, nullptr);
  if (layout_) vkDestroyPipelineLayout(d, layout_, nullptr);
  if (set_layout_) vkDestroyDescriptorSetLayout(d, set_layout_, nullptr);
}

absl::Status Pipelines::Init() {
  VkDevice d = device_.handle();
  VkDescriptorSetLayoutBinding b[kNumBindings];
  for (int i = 0; i < kNumBindings; ++i) {
    b[i] = {};
    b[i].binding = i;
    b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    b[i].descriptorCount = 1;
    b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo sci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  sci.bindingCount = kNumBindings;
  sci.pBindings = b;
  if (VkResult r = vkCreateDescriptorSetLayout(d, &sci, nullptr, &set_layout_); r != VK_SUCCESS) {
    return VkError(r, "vkCreateDescriptorSetLayout");
  }
  VkPushConstantRange pc{VK_SHADER_STAGE_COMPUTE_BIT, 0, 16};
  VkPipelineLayoutCreateInfo lci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  lci.setLayoutCount = 1;
  lci.pSetLayouts = &set_layout_;
  lci.pushConstantRangeCount = 1;
  lci.pPushConstantRanges = &pc;
  if (VkResult r = vkCreatePipelineLayout(d, &lci, nullptr, &layout_); r != VK_SUCCESS) {
    return VkError(r, "vkCreatePipelineLayout");
  }
  return absl::OkStatus();
}

absl::StatusOr<VkShaderModule> Pipelines::Module(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = modules_.find(name); it != modules_.end()) return it->second;
  const ShaderBlob* blob = FindShader(name);
  if (!blob) return absl::InternalError(absl::StrCat("vulkan: no shader named '", name, "' is embedded"));
  VkShaderModuleCreateInfo ci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  ci.codeSize = blob->num_words * 4;
  ci.pCode = blob->words;
  VkShaderModule m;
  if (VkResult r = vkCreateShaderModule(device_.handle(), &ci, nullptr, &m); r != VK_SUCCESS) {
    return VkError(r, absl::StrCat("vkCreateShaderModule(", name, ")"));
  }
  modules_[name] = m;
  return m;
}

absl::StatusOr<PipelineKey> Pipelines::KeyOf(const PipelineSpec& spec) const {
  const ShaderBlob* blob = FindShader(spec.shader);
  if (!blob) return absl::InternalError(absl::StrCat("vulkan: no shader named '", spec.shader, "' is embedded"));
  PipelineKey key;
  key.kernel = spec.shader;
  key.source_hash = StableHash64(
      absl::string_view(reinterpret_cast<const char*>(blob->words), blob->num_words * 4));
  key.values.assign(spec.spec.begin(), spec.spec.end());
  return key;
}

absl::StatusOr<VkPipeline> Pipelines::Compile(const PipelineSpec& spec, VkPipelineCache cache, bool* hit) {
  auto module = Module(spec.shader);
  if (!module.ok()) return module.status();
  std::vector<VkSpecializationMapEntry> entries(spec.spec.size());
  for (size_t i = 0; i < spec.spec.size(); ++i) {
    entries[i] = {static_cast<uint32_t>(i), static_cast<uint32_t>(4 * i), 4};
  }
  VkSpecializationInfo si{};
  si.mapEntryCount = static_cast<uint32_t>(entries.size());
  si.pMapEntries = entries.data();
  si.dataSize = spec.spec.size() * 4;
  si.pData = spec.spec.data();
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = *module;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = &si;
  ci.layout = layout_;
  // Creation feedback says whether the driver found it in the cache.
  VkPipelineCreationFeedbackEXT feedback{};
  VkPipelineCreationFeedbackCreateInfoEXT fci{VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO_EXT};
  fci.pPipelineCreationFeedback = &feedback;
  if (device_.facts().creation_feedback) ci.pNext = &fci;
  if (device_.facts().executable_stats) ci.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
  VkPipeline p = VK_NULL_HANDLE;
  VkResult r = vkCreateComputePipelines(device_.handle(), cache, 1, &ci, nullptr, &p);
  if (r != VK_SUCCESS) return VkError(r, absl::StrCat("vkCreateComputePipelines(", spec.Key(), ")"));
  *hit = (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT_EXT) &&
         (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT_EXT);
  if (device_.facts().executable_stats) PrintStatistics(spec, p);
  return p;
}

// KILN_VULKAN_PIPELINE_STATS=1: one line per pipeline, the driver's
// statistics of its executable(s) (NVIDIA's include the register count,
// which bounds how many workgroups an SM holds).
void Pipelines::PrintStatistics(const PipelineSpec& spec, VkPipeline p) const {
  VkDevice d = device_.handle();
  auto props_fn = reinterpret_cast<PFN_vkGetPipelineExecutablePropertiesKHR>(
      vkGetDeviceProcAddr(d, "vkGetPipelineExecutablePropertiesKHR"));
  auto stats_fn = reinterpret_cast<PFN_vkGetPipelineExecutableStatisticsKHR>(
      vkGetDeviceProcAddr(d, "vkGetPipelineExecutableStatisticsKHR"));
  if (!props_fn || !stats_fn) return;
  VkPipelineInfoKHR pi{VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR};
  pi.pipeline = p;
  uint32_t n = 0;
  if (props_fn(d, &pi, &n, nullptr) != VK_SUCCESS) return;
  std::vector<VkPipelineExecutablePropertiesKHR> execs(n, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR});
  if (props_fn(d, &pi, &n, execs.data()) != VK_SUCCESS) return;
  for (uint32_t e = 0; e < n; ++e) {
    VkPipelineExecutableInfoKHR ei{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
    ei.pipeline = p;
    ei.executableIndex = e;
    uint32_t ns = 0;
    if (stats_fn(d, &ei, &ns, nullptr) != VK_SUCCESS) continue;
    std::vector<VkPipelineExecutableStatisticKHR> st(ns, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR});
    if (stats_fn(d, &ei, &ns, st.data()) != VK_SUCCESS) continue;
    std::string line = absl::StrCat("vulkan pipeline stats: ", spec.Key(), ": ", execs[e].name, ":");
    for (const auto& s : st) {
      absl::StrAppend(&line, " ", s.name, "=");
      switch (s.format) {
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: absl::StrAppend(&line, s.value.b32 ? "true" : "false"); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: absl::StrAppend(&line, s.value.i64); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: absl::StrAppend(&line, s.value.u64); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR: absl::StrAppend(&line, s.value.f64); break;
        default: absl::StrAppend(&line, "?");
      }
      absl::StrAppend(&line, ";");
    }
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

absl::StatusOr<std::unique_ptr<VkPipelineObj>> Pipelines::Create(const PipelineSpec& spec, const PipelineKey& key,
                                                                 PipelineOrigin& origin) {
  VkDevice d = device_.handle();
  const DiskCacheKey dk{"vulkan", device_key_, driver_key_, key.source_hash, key.Canonical()};
  std::optional<std::string> blob = disk_.Load(dk);
  if (blob && !PipelineCacheBlobMatches(*blob, device_.facts().props)) blob.reset();
  // A pipeline cache of its own per pipeline: its data is exactly this
  // pipeline's entry.
  VkPipelineCacheCreateInfo cci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  if (blob) {
    cci.initialDataSize = blob->size();
    cci.pInitialData = blob->data();
  }
  VkPipelineCache cache = VK_NULL_HANDLE;
  VkResult r = vkCreatePipelineCache(d, &cci, nullptr, &cache);
  if (r != VK_SUCCESS && blob) {  // data the driver refuses: start empty
    blob.reset();
    cci.initialDataSize = 0;
    cci.pInitialData = nullptr;
    r = vkCreatePipelineCache(d, &cci, nullptr, &cache);
  }
  if (r != VK_SUCCESS) return VkError(r, "vkCreatePipelineCache");
  bool hit = false;
  auto p = Compile(spec, cache, &hit);
  if (p.ok()) {
    origin.from_disk = blob.has_value() && hit;
    if (!origin.from_disk && disk_.enabled()) {
      size_t n = 0;
      if (vkGetPipelineCacheData(d, cache, &n, nullptr) == VK_SUCCESS && n > 32) {
        std::string data(n, '\0');
        if (vkGetPipelineCacheData(d, cache, &n, data.data()) == VK_SUCCESS) {
          data.resize(n);
          (void)disk_.Store(dk, data);  // a failed store is reported once by the DiskCache
        }
      }
    }
  }
  vkDestroyPipelineCache(d, cache, nullptr);
  if (!p.ok()) return p.status();
  auto obj = std::make_unique<VkPipelineObj>();
  obj->device = d;
  obj->pipeline = *p;
  return obj;
}

}  // namespace kiln::vk
