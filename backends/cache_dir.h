// Where backends keep their on-disk pipeline caches (VkPipelineCache blobs,
// OpenCL program binaries): $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else
// ~/.cache/kiln. One place, so every backend and `kiln info` agree. The
// entries themselves are DiskCache's (disk_cache.h), in its pipelines/.
#pragma once

#include <string>

namespace kiln {

// Empty (the disk layer is off) when KILN_CACHE_DIR is set to "" or "off",
// or when none of the variables is set.
std::string PipelineCacheDir();

}  // namespace kiln
