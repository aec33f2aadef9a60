// The Vulkan backend: Vulkan 1.2 compute on the first discrete GPU (or
// $KILN_VULKAN_DEVICE), GLSL shaders compiled to SPIR-V at build time.
#pragma once

#include "backends/registry.h"

namespace kiln {

// "vulkan": ListDevices enumerates physical devices without creating one.
BackendFactory VulkanBackendFactory();

}  // namespace kiln
