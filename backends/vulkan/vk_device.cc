#include "backends/vulkan/vk_device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kiln::vk {

const char* VkResultName(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    default: return "VkResult";
  }
}

absl::Status VkError(VkResult r, absl::string_view what) {
  if (r == VK_SUCCESS) return absl::OkStatus();
  if (r == VK_ERROR_DEVICE_LOST) return DeviceLostError("vulkan", what);
  const std::string msg = absl::StrCat("vulkan: ", what, ": ", VkResultName(r), " (", static_cast<int>(r), ")");
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
    return absl::ResourceExhaustedError(msg);
  }
  return absl::InternalError(msg);
}

bool DeviceFacts::Has(absl::string_view ext) const {
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

absl::StatusOr<std::shared_ptr<Instance>> Instance::Create() {
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "kiln";
  app.pEngineName = "kiln";
  app.apiVersion = VK_API_VERSION_1_2;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  auto inst = std::shared_ptr<Instance>(new Instance());
  VkResult r = vkCreateInstance(&ci, nullptr, &inst->instance_);
  if (r != VK_SUCCESS) {
    return absl::UnavailableError(absl::StrCat("vulkan: no Vulkan driver (vkCreateInstance: ", VkResultName(r), ")"));
  }
  return inst;
}

Instance::~Instance() {
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

namespace {

std::string KindName(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

std::string Version(uint32_t v) {
  return absl::StrCat(VK_API_VERSION_MAJOR(v), ".", VK_API_VERSION_MINOR(v), ".", VK_API_VERSION_PATCH(v));
}

const char* ComponentName(VkComponentTypeNV t) {
  switch (t) {
    case VK_COMPONENT_TYPE_FLOAT16_NV: return "f16";
    case VK_COMPONENT_TYPE_FLOAT32_NV: return "f32";
    case VK_COMPONENT_TYPE_FLOAT64_NV: return "f64";
    case VK_COMPONENT_TYPE_SINT8_NV: return "s8";
    case VK_COMPONENT_TYPE_UINT8_NV: return "u8";
    case VK_COMPONENT_TYPE_SINT32_NV: return "s32";
    case VK_COMPONENT_TYPE_UINT32_NV: return "u32";
    default: return "?";
  }
}

DeviceFacts Describe(VkInstance instance, VkPhysicalDevice pd) {
  DeviceFacts f;
  f.physical = pd;
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> exts(n);
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data());
  for (const auto& e : exts) f.extensions.push_back(e.extensionName);

  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlPropertiesEXT size_control{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
  VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceProperties2 props2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props2.pNext = &subgroup;
  subgroup.pNext = &driver;
  vkGetPhysicalDeviceProperties(pd, &f.props);
  const bool has_size_control =
      f.Has(VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME) || f.props.apiVersion >= VK_API_VERSION_1_3;
  if (has_size_control) driver.pNext = &size_control;
  vkGetPhysicalDeviceProperties2(pd, &props2);
  f.subgroup_size = subgroup.subgroupSize;
  f.subgroup_arithmetic = (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                          (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
  f.subgroup_shuffle = (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) &&
                       (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
  f.min_subgroup = has_size_control ? size_control.minSubgroupSize : f.subgroup_size;
  f.max_subgroup = has_size_control ? size_control.maxSubgroupSize : f.subgroup_size;

  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT sc{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
  VkPhysicalDeviceCooperativeMatrixFeaturesNV cm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.pNext = &f11;
  f11.pNext = &f12;
  void** tail = &f12.pNext;
  if (has_size_control) { *tail = &sc; tail = &sc.pNext; }
  if (f.Has(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME)) { *tail = &cm; tail = &cm.pNext; }
  const bool api12 = f.props.apiVersion >= VK_API_VERSION_1_2;
  if (api12) vkGetPhysicalDeviceFeatures2(pd, &feats);
  f.storage16 = api12 && f11.storageBuffer16BitAccess;
  f.storage8 = api12 && f12.storageBuffer8BitAccess;
  f.float16 = api12 && f12.shaderFloat16;
  f.int8 = api12 && f12.shaderInt8;
  f.timeline = api12 && f12.timelineSemaphore;
  f.float64 = feats.features.shaderFloat64;
  f.int64 = feats.features.shaderInt64;
  f.subgroup_size_control = has_size_control && sc.subgroupSizeControl && sc.computeFullSubgroups;
  f.coopmat_nv = f.Has(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) && cm.cooperativeMatrix;
  f.coopmat_khr = f.Has("VK_KHR_cooperative_matrix");
  f.bfloat16 = f.Has("VK_KHR_shader_bfloat16");
  f.creation_feedback = f.Has(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME) ||
                        f.props.apiVersion >= VK_API_VERSION_1_3;
  const char* stats = std::getenv("KILN_VULKAN_PIPELINE_STATS");
  f.executable_stats = stats && std::string_view(stats) == "1" &&
                       f.Has(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
  if (f.coopmat_nv) {
    auto get = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    if (get) {
      uint32_t count = 0;
      get(pd, &count, nullptr);
      std::vector<VkCooperativeMatrixPropertiesNV> shapes(count, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
      get(pd, &count, shapes.data());
      for (const auto& s : shapes) {
        if (s.scope != VK_SCOPE_SUBGROUP_NV) continue;
        f.coopmat_shapes.push_back(absl::StrCat(s.MSize, "x", s.NSize, "x", s.KSize, " ", ComponentName(s.AType),
                                                "->", ComponentName(s.DType)));
      }
    }
  }

  vkGetPhysicalDeviceMemoryProperties(pd, &f.memory);
  uint32_t qn = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, nullptr);
  std::vector<VkQueueFamilyProperties> qf(qn);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, qf.data());
  f.queue_family = UINT32_MAX;
  // A compute queue: prefer one that is compute-only (less contention with
  // graphics work), else any with compute.
  for (int pass = 0; pass < 2 && f.queue_family == UINT32_MAX; ++pass) {
    for (uint32_t i = 0; i < qn; ++i) {
      const bool compute = qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT;
      const bool graphics = qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT;
      if (compute && (pass == 1 || !graphics) && qf[i].timestampValidBits > 0) {
        f.queue_family = i;
        f.timestamp_valid_bits = qf[i].timestampValidBits;
        break;
      }
    }
  }
  if (f.queue_family == UINT32_MAX) {
    for (uint32_t i = 0; i < qn; ++i) {
      if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) { f.queue_family = i; break; }
    }
  }

  DeviceInfo& d = f.info;
  d.backend = "vulkan";
  d.kind = KindName(f.props.deviceType);
  d.name = f.props.deviceName;
  d.driver = absl::StrCat(driver.driverName, " ", driver.driverInfo, ", Vulkan ", Version(f.props.apiVersion));
  d.id = absl::StrFormat("%04x:%04x:%08x:%s", f.props.vendorID, f.props.deviceID, f.props.driverVersion,
                         absl::StrJoin(f.props.pipelineCacheUUID, f.props.pipelineCacheUUID + VK_UUID_SIZE, "",
                                       [](std::string* out, uint8_t b) { absl::StrAppendFormat(out, "%02x", b); }));
  uint64_t local = 0;
  for (uint32_t i = 0; i < f.memory.memoryHeapCount; ++i) {
    const auto& h = f.memory.memoryHeaps[i];
    if (h.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) local += h.size;
  }
  d.memory_bytes = local;
  d.subgroup_size = static_cast<int>(f.subgroup_size);
  d.compute_units = 0;  // Vulkan does not say
  auto yes = [](bool b) { return b ? "yes" : "no"; };
  d.features.push_back(absl::StrCat("api:", Version(f.props.apiVersion)));
  d.features.push_back(absl::StrCat("subgroup:", f.subgroup_size, " (", f.min_subgroup, "..", f.max_subgroup,
                                    ", size control ", yes(f.subgroup_size_control), ", arithmetic ",
                                    yes(f.subgroup_arithmetic), ")"));
  d.features.push_back(absl::StrCat("fp16:", yes(f.float16), " bf16:", yes(f.bfloat16), " int8:", yes(f.int8),
                                    " fp64:", yes(f.float64)));
  d.features.push_back(absl::StrCat("storage:16-bit ", yes(f.storage16), ", 8-bit ", yes(f.storage8)));
  d.features.push_back(absl::StrCat("coopmat:NV ", yes(f.coopmat_nv), ", KHR ", yes(f.coopmat_khr),
                                    f.Has("VK_NV_cooperative_matrix2") ? ", NV2 yes" : ""));
  if (!f.coopmat_shapes.empty()) {
    d.features.push_back(absl::StrCat("coopmat shapes:", absl::StrJoin(f.coopmat_shapes, ", ")));
  }
  d.features.push_back(absl::StrCat("shared memory:", f.props.limits.maxComputeSharedMemorySize / 1024, " KiB"));
  d.features.push_back(absl::StrCat("max workgroup:", f.props.limits.maxComputeWorkGroupInvocations,
                                    " invocations"));
  d.features.push_back(absl::StrCat("max storage range:", f.props.limits.maxStorageBufferRange, " bytes"));
  for (uint32_t i = 0; i < f.memory.memoryHeapCount; ++i) {
    const auto& h = f.memory.memoryHeaps[i];
    std::vector<std::string> types;
    for (uint32_t t = 0; t < f.memory.memoryTypeCount; ++t) {
      const auto& mt = f.memory.memoryTypes[t];
      if (mt.heapIndex != i) continue;
      std::string s;
      if (mt.propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) s += "L";
      if (mt.propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) s += "V";
      if (mt.propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) s += "C";
      if (mt.propertyFlags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) s += "$";
      types.push_back(s.empty() ? "-" : s);
    }
    d.features.push_back(absl::StrFormat("heap %u:%.1f GiB%s (types %s)", i, h.size / double(1 << 30),
                                         (h.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) ? " device-local" : "",
                                         absl::StrJoin(types, " ")));
  }
  d.features.push_back(absl::StrCat("timeline semaphore:", yes(f.timeline), ", timestamps:",
                                    f.timestamp_valid_bits, " bits, ", f.props.limits.timestampPeriod, " ns/tick"));
  return f;
}

}  // namespace

absl::StatusOr<std::vector<DeviceFacts>> Instance::Devices() const {
  uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices(instance_, &n, nullptr);
  if (r != VK_SUCCESS) return VkError(r, "vkEnumeratePhysicalDevices");
  std::vector<VkPhysicalDevice> pds(n);
  vkEnumeratePhysicalDevices(instance_, &n, pds.data());
  std::vector<DeviceFacts> out;
  for (VkPhysicalDevice pd : pds) {
    DeviceFacts f = Describe(instance_, pd);
    if (f.queue_family == UINT32_MAX) continue;
    out.push_back(std::move(f));
  }
  if (out.empty()) return absl::UnavailableError("vulkan: no device with a compute queue");
  return out;
}

int PreferredDevice(const std::vector<DeviceFacts>& devices) {
  for (VkPhysicalDeviceType t : {VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU,
                                 VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU}) {
    for (size_t i = 0; i < devices.size(); ++i) {
      if (devices[i].props.deviceType == t) return static_cast<int>(i);
    }
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<Device>> Device::Create(std::shared_ptr<Instance> instance,
                                                       const DeviceFacts& facts) {
  std::vector<std::string> missing;
  if (facts.props.apiVersion < VK_API_VERSION_1_2) missing.push_back("Vulkan 1.2");
  if (!facts.storage16) missing.push_back("16-bit storage buffers");
  if (!facts.storage8) missing.push_back("8-bit storage buffers");
  if (!facts.timeline) missing.push_back("timeline semaphores");
  if (!facts.subgroup_arithmetic) missing.push_back("subgroup arithmetic in compute");
  if (!missing.empty()) {
    return absl::UnavailableError(absl::StrCat("vulkan: device '", facts.info.name, "' lacks ",
                                               absl::StrJoin(missing, ", ")));
  }
  auto dev = std::unique_ptr<Device>(new Device());
  dev->instance_ = std::move(instance);
  dev->facts_ = facts;

  float priority = 1.0f;
  VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qci.queueFamilyIndex = facts.queue_family;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;

  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  f11.storageBuffer16BitAccess = VK_TRUE;
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  f12.storageBuffer8BitAccess = VK_TRUE;
  f12.timelineSemaphore = VK_TRUE;
  f12.shaderFloat16 = facts.float16;
  f12.shaderInt8 = facts.int8;
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT sc{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
  sc.subgroupSizeControl = VK_TRUE;
  sc.computeFullSubgroups = VK_TRUE;
  VkPhysicalDeviceCooperativeMatrixFeaturesNV cm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  cm.cooperativeMatrix = VK_TRUE;
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.features.shaderFloat64 = facts.float64;
  feats.features.shaderInt64 = facts.int64;
  feats.pNext = &f11;
  f11.pNext = &f12;
  void** tail = &f12.pNext;
  std::vector<const char*> exts;
  if (facts.subgroup_size_control) {
    *tail = &sc;
    tail = &sc.pNext;
    if (facts.props.apiVersion < VK_API_VERSION_1_3) exts.push_back(VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  }
  if (facts.coopmat_nv) {
    *tail = &cm;
    tail = &cm.pNext;
    exts.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
  }
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pe{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
  pe.pipelineExecutableInfo = VK_TRUE;
  if (facts.executable_stats) {
    *tail = &pe;
    tail = &pe.pNext;
    exts.push_back(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
  }
  if (facts.creation_feedback && facts.Has(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME) &&
      facts.props.apiVersion < VK_API_VERSION_1_3) {
    exts.push_back(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME);
  }
  VkDeviceCreateInfo ci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  ci.pNext = &feats;
  ci.queueCreateInfoCount = 1;
  ci.pQueueCreateInfos = &qci;
  ci.enabledExtensionCount = static_cast<uint32_t>(exts.size());
  ci.ppEnabledExtensionNames = exts.data();
  VkResult r = vkCreateDevice(facts.physical, &ci, nullptr, &dev->device_);
  if (r != VK_SUCCESS) return VkError(r, absl::StrCat("vkCreateDevice for '", facts.info.name, "'"));
  vkGetDeviceQueue(dev->device_, facts.queue_family, 0, &dev->queue_);
  return dev;
}

Device::~Device() {
  if (device_) {
    vkDeviceWaitIdle(device_);
    vkDestroyDevice(device_, nullptr);
  }
}

int Device::FindMemoryType(uint32_t type_bits, VkMemoryPropertyFlags required,
                           VkMemoryPropertyFlags preferred) const {
  int best = -1, best_score = -1;
  const auto& mem = facts_.memory;
  for (uint32_t i = 0; i < mem.memoryTypeCount; ++i) {
    if (!(type_bits & (1u << i))) continue;
    const VkMemoryPropertyFlags f = mem.memoryTypes[i].propertyFlags;
    if ((f & required) != required) continue;
    const int score = __builtin_popcount(f & preferred);
    if (score > best_score) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  return best;
}

}  // namespace kiln::vk
