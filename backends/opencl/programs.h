// OpenCL programs: built on first use from the embedded sources with a
// node's specialization as -D options, once per (source, options) even with
// concurrent callers (PipelineCache), and kept as binaries in the shared
// on-disk cache (backends/disk_cache.h), keyed by device, driver, source hash
// and options.
#pragma once

#include <CL/cl.h>

#include <atomic>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/disk_cache.h"
#include "backends/pipeline_cache.h"
#include "device.h"

namespace kiln::opencl {

// The embedded text of kernels/<name>.cl (generated opencl_sources.cc).
const char* OpenClSource(std::string_view name);

struct Program {
  cl_program program = nullptr;
  ~Program() {
    if (program) clReleaseProgram(program);
  }
};

class ProgramCache {
 public:
  ProgramCache(cl_context context, const DeviceFacts& device, DiskCacheOptions disk);

  // The built program of kernels/<source>.cl (after common.cl) with `options`.
  absl::StatusOr<cl_program> Get(absl::string_view source, const std::string& options);
  PipelineStats stats() const;
  const std::string& disk_dir() const { return disk_.dir(); }

 private:
  absl::StatusOr<std::unique_ptr<Program>> Build(absl::string_view source, const std::string& options,
                                                 const std::string& text, uint64_t source_hash, PipelineOrigin& origin);

  cl_context context_;
  const DeviceFacts& device_;
  DiskCache disk_;
  PipelineCache<Program> cache_;
};

}  // namespace kiln::opencl
