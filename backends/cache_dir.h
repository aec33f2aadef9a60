// Where backends keep their on-disk pipeline caches (VkPipelineCache blobs,
// OpenCL program binaries): $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else
// ~/.cache/kiln. One place, so every backend and `kiln info` agree.
#pragma once

#include <string>

namespace kiln {

// Empty when none of the variables is set.
std::string PipelineCacheDir();

}  // namespace kiln
