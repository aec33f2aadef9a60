#include "backends/vulkan/vk_pipelines.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/vulkan/vk_shaders.h"

namespace kiln::vk {

std::string PipelineSpec::Key() const { return absl::StrCat(shader, "[", absl::StrJoin(spec, ","), "]"); }

std::vector<char> LoadPipelineCacheBlob(const std::string& path, const VkPhysicalDeviceProperties& props) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::vector<char> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // VkPipelineCacheHeaderVersionOne: length, version, vendor, device, UUID.
  if (blob.size() < 32) return {};
  uint32_t words[4];
  std::memcpy(words, blob.data(), 16);
  if (words[0] < 32 || words[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE || words[2] != props.vendorID ||
      words[3] != props.deviceID || std::memcmp(blob.data() + 16, props.pipelineCacheUUID, VK_UUID_SIZE) != 0) {
    return {};
  }
  return blob;
}

void StorePipelineCacheBlob(const std::string& path, const std::vector<char>& blob) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
    if (!out) {
      std::remove(tmp.c_str());
      return;
    }
  }
  std::filesystem::rename(tmp, path, ec);  // atomic: readers see the old or the new blob
  if (ec) std::remove(tmp.c_str());
}

Pipelines::Pipelines(const Device& device, std::string cache_file)
    : device_(device), cache_file_(std::move(cache_file)) {}

Pipelines::~Pipelines() {
  Save();
  VkDevice d = device_.handle();
  for (auto& [name, m] : modules_) vkDestroyShaderModule(d, m, nullptr);
  if (cache_) vkDestroyPipelineCache(d, cache_, nullptr);
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
  std::vector<char> blob;
  if (!cache_file_.empty()) blob = LoadPipelineCacheBlob(cache_file_, device_.facts().props);
  VkPipelineCacheCreateInfo cci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  cci.initialDataSize = blob.size();
  cci.pInitialData = blob.empty() ? nullptr : blob.data();
  VkResult r = vkCreatePipelineCache(d, &cci, nullptr, &cache_);
  if (r != VK_SUCCESS && !blob.empty()) {  // a blob the driver rejects: start empty
    cci.initialDataSize = 0;
    cci.pInitialData = nullptr;
    blob.clear();
    r = vkCreatePipelineCache(d, &cci, nullptr, &cache_);
  }
  if (r != VK_SUCCESS) return VkError(r, "vkCreatePipelineCache");
  loaded_bytes_ = blob.size();
  return absl::OkStatus();
}

void Pipelines::Save() {
  if (cache_file_.empty() || !cache_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dirty_) return;
    dirty_ = false;
  }
  size_t n = 0;
  if (vkGetPipelineCacheData(device_.handle(), cache_, &n, nullptr) != VK_SUCCESS || n == 0) return;
  std::vector<char> blob(n);
  if (vkGetPipelineCacheData(device_.handle(), cache_, &n, blob.data()) != VK_SUCCESS) return;
  blob.resize(n);
  StorePipelineCacheBlob(cache_file_, blob);
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

absl::StatusOr<VkPipelineObj> Pipelines::Create(const PipelineSpec& spec) {
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
  VkPipelineObj obj;
  VkResult r = vkCreateComputePipelines(device_.handle(), cache_, 1, &ci, nullptr, &obj.pipeline);
  if (r != VK_SUCCESS) return VkError(r, absl::StrCat("vkCreateComputePipelines(", spec.Key(), ")"));
  const bool hit = (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT_EXT) &&
                   (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT_EXT);
  obj.from_disk = hit && loaded_bytes_ > 0;
  if (!hit) {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
  }
  return obj;
}

}  // namespace kiln::vk
