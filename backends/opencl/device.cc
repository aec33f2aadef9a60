#include "device.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backends/registry.h"
#include "cl_util.h"

namespace kiln::opencl {
namespace {

std::string PlatformString(cl_platform_id p, cl_platform_info what) {
  size_t n = 0;
  if (clGetPlatformInfo(p, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  clGetPlatformInfo(p, what, n, s.data(), nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}
std::string DeviceString(cl_device_id d, cl_device_info what) {
  size_t n = 0;
  if (clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  clGetDeviceInfo(d, what, n, s.data(), nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}
template <typename T>
T DeviceValue(cl_device_id d, cl_device_info what, T fallback = T{}) {
  T v{};
  if (clGetDeviceInfo(d, what, sizeof(T), &v, nullptr) != CL_SUCCESS) return fallback;
  return v;
}

int TypeRank(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return 0;
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return 1;
  return 2;
}

}  // namespace

bool DeviceFacts::HasExtension(const char* ext) const {
  for (absl::string_view e : absl::StrSplit(extensions, ' ', absl::SkipEmpty())) {
    if (e == ext) return true;
  }
  return false;
}

std::string DeviceFacts::Identity() const {
  return absl::StrCat("opencl:", platform_name, ":", vendor, ":", name, ":", driver, ":", version);
}

DeviceInfo DeviceFacts::Info() const {
  DeviceInfo d;
  d.backend = "opencl";
  if (type & CL_DEVICE_TYPE_GPU) {
    d.kind = unified_memory ? "integrated-gpu" : "discrete-gpu";
  } else if (type & CL_DEVICE_TYPE_CPU) {
    d.kind = "cpu";
  } else {
    d.kind = "accelerator";
  }
  d.name = name;
  d.driver = absl::StrCat(platform_version, "; driver ", driver);
  d.id = Identity();
  d.memory_bytes = global_mem;
  d.subgroup_size = subgroup_size;
  d.compute_units = compute_units;
  auto yes = [](bool b) { return b ? "yes" : "no"; };
  d.features = {
      absl::StrCat("platform:", platform_index, ":", platform_name),
      absl::StrCat("index:", platform_index, ":", device_index),
      absl::StrCat("version:", version),
      absl::StrCat("opencl_c:", c_version),
      absl::StrCat("fp16:", yes(fp16)),
      absl::StrCat("fp64:", yes(fp64)),
      absl::StrCat("subgroups:", yes(subgroups)),
      absl::StrCat("integer_dot:", yes(integer_dot)),
      absl::StrCat("local_mem:", local_mem),
      absl::StrCat("max_work_group:", max_work_group),
      absl::StrCat("max_alloc:", max_alloc),
      absl::StrCat("mem_base_align:", mem_base_align_bytes),
  };
  if (subgroup_size > 0) d.features.push_back(absl::StrCat("warp:", subgroup_size));
  return d;
}

absl::StatusOr<std::vector<DeviceFacts>> EnumerateDevices() {
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, nullptr, &np);
  if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && np == 0)) {
    return absl::UnavailableError("opencl: no OpenCL platform (is an ICD installed, e.g. pocl-opencl-icd?)");
  }
  if (err != CL_SUCCESS) return ClError(err, "listing platforms");
  std::vector<cl_platform_id> platforms(np);
  clGetPlatformIDs(np, platforms.data(), nullptr);
  std::vector<DeviceFacts> out;
  for (cl_uint pi = 0; pi < np; ++pi) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[pi], CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0) continue;
    std::vector<cl_device_id> devices(nd);
    clGetDeviceIDs(platforms[pi], CL_DEVICE_TYPE_ALL, nd, devices.data(), nullptr);
    for (cl_uint di = 0; di < nd; ++di) {
      DeviceFacts f;
      f.platform = platforms[pi];
      f.device = devices[di];
      f.platform_index = static_cast<int>(pi);
      f.device_index = static_cast<int>(di);
      f.platform_name = PlatformString(platforms[pi], CL_PLATFORM_NAME);
      f.platform_version = PlatformString(platforms[pi], CL_PLATFORM_VERSION);
      f.name = DeviceString(f.device, CL_DEVICE_NAME);
      f.vendor = DeviceString(f.device, CL_DEVICE_VENDOR);
      f.version = DeviceString(f.device, CL_DEVICE_VERSION);
      f.driver = DeviceString(f.device, CL_DRIVER_VERSION);
      f.c_version = DeviceString(f.device, CL_DEVICE_OPENCL_C_VERSION);
      f.extensions = DeviceString(f.device, CL_DEVICE_EXTENSIONS);
      f.type = DeviceValue<cl_device_type>(f.device, CL_DEVICE_TYPE);
      f.unified_memory = DeviceValue<cl_bool>(f.device, CL_DEVICE_HOST_UNIFIED_MEMORY) != CL_FALSE;
      f.global_mem = DeviceValue<cl_ulong>(f.device, CL_DEVICE_GLOBAL_MEM_SIZE);
      f.max_alloc = DeviceValue<cl_ulong>(f.device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
      f.local_mem = DeviceValue<cl_ulong>(f.device, CL_DEVICE_LOCAL_MEM_SIZE);
      f.max_work_group = DeviceValue<size_t>(f.device, CL_DEVICE_MAX_WORK_GROUP_SIZE);
      f.compute_units = static_cast<int>(DeviceValue<cl_uint>(f.device, CL_DEVICE_MAX_COMPUTE_UNITS, 1));
      f.mem_base_align_bytes =
          std::max<int>(16, static_cast<int>(DeviceValue<cl_uint>(f.device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, 1024) / 8));
      f.fp16 = f.HasExtension("cl_khr_fp16");
      f.fp64 = f.HasExtension("cl_khr_fp64");
      f.subgroups = f.HasExtension("cl_khr_subgroups") || f.HasExtension("cl_intel_subgroups");
      f.integer_dot = f.HasExtension("cl_khr_integer_dot_product");
      if (f.HasExtension("cl_nv_device_attribute_query")) {
        f.subgroup_size = static_cast<int>(DeviceValue<cl_uint>(f.device, 0x4003 /* CL_DEVICE_WARP_SIZE_NV */));
      }
      const auto qprops = DeviceValue<cl_command_queue_properties>(f.device, CL_DEVICE_QUEUE_PROPERTIES);
      f.profiling = (qprops & CL_QUEUE_PROFILING_ENABLE) != 0;
      out.push_back(std::move(f));
    }
  }
  if (out.empty()) return absl::UnavailableError("opencl: the OpenCL platforms list no devices");
  std::stable_sort(out.begin(), out.end(),
                   [](const DeviceFacts& a, const DeviceFacts& b) { return TypeRank(a.type) < TypeRank(b.type); });
  return out;
}

absl::StatusOr<int> PickDevice(const std::vector<DeviceFacts>& devices, const std::string& requested) {
  std::string asked = requested;
  if (asked.empty()) {
    if (const char* v = std::getenv("KILN_OPENCL_DEVICE"); v && *v) asked = v;
  }
  // "P:D": platform and device index as the platforms list them.
  std::vector<std::string> parts = absl::StrSplit(asked, ':');
  int p = 0, d = 0;
  if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &p) && absl::SimpleAtoi(parts[1], &d)) {
    for (size_t i = 0; i < devices.size(); ++i) {
      if (devices[i].platform_index == p && devices[i].device_index == d) return static_cast<int>(i);
    }
    std::vector<std::string> names;
    for (const DeviceFacts& f : devices) {
      names.push_back(absl::StrCat(f.platform_index, ":", f.device_index, " ", f.name));
    }
    return absl::NotFoundError(absl::StrCat("opencl: no device ", asked, " (platform:device); the devices are: ",
                                            absl::StrJoin(names, "; ")));
  }
  std::vector<DeviceInfo> infos;
  for (const DeviceFacts& f : devices) infos.push_back(f.Info());
  return ChooseDevice("opencl", infos, asked, 0);
}

}  // namespace kiln::opencl
