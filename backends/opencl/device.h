// OpenCL platforms and devices: enumeration in kiln's preference order (GPUs
// first, across platforms), the facts kernels are chosen by, and DeviceInfo
// for `kiln info`.
#pragma once

#include <CL/cl.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"

namespace kiln::opencl {

struct DeviceFacts {
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
  int platform_index = 0, device_index = 0;  // in clGetPlatformIDs / clGetDeviceIDs order
  std::string platform_name, platform_version;
  std::string name, vendor, version, driver, c_version;
  std::string extensions;
  cl_device_type type = 0;
  bool unified_memory = false;
  uint64_t global_mem = 0, max_alloc = 0, local_mem = 0;
  size_t max_work_group = 0;
  int compute_units = 0;
  int mem_base_align_bytes = 128;
  int subgroup_size = 0;  // NVIDIA warp size when reported; 0 unknown
  bool fp16 = false, fp64 = false, subgroups = false, integer_dot = false;
  bool profiling = true;

  bool HasExtension(const char* ext) const;
  // Stable identity for on-disk caches.
  std::string Identity() const;
  DeviceInfo Info() const;
};

// Every device of every platform, GPUs first (then accelerators, then CPUs),
// otherwise in platform/device order. An error when there is no platform.
absl::StatusOr<std::vector<DeviceFacts>> EnumerateDevices();

// Picks a device: "" (then $KILN_OPENCL_DEVICE), "P:D" (platform and device
// index), an index into EnumerateDevices' list, or a name substring.
absl::StatusOr<int> PickDevice(const std::vector<DeviceFacts>& devices, const std::string& requested);

}  // namespace kiln::opencl
