// OpenCL programs: built on first use from the embedded sources with a
// node's specialization as -D options, once per (source, options) even with
// concurrent callers (PipelineCache), and kept as binaries on disk.
#pragma once

#include <CL/cl.h>

#include <atomic>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

// The on-disk layer, behind two functions so another store can replace it:
// `key` names everything the binary depends on (device, driver, source
// hash, options); a file whose recorded key differs is ignored.
std::optional<std::string> LoadProgramBinary(const std::string& dir, const std::string& key);
void StoreProgramBinary(const std::string& dir, const std::string& key, const std::string& binary);

class ProgramCache {
 public:
  // disk_dir "": no disk cache.
  ProgramCache(cl_context context, const DeviceFacts& device, std::string disk_dir);

  // The built program of kernels/<source>.cl (after common.cl) with `options`.
  absl::StatusOr<cl_program> Get(absl::string_view source, const std::string& options);
  PipelineStats stats() const;
  const std::string& disk_dir() const { return disk_dir_; }

 private:
  absl::StatusOr<std::unique_ptr<Program>> Build(absl::string_view source, const std::string& options);

  cl_context context_;
  const DeviceFacts& device_;
  std::string disk_dir_;
  PipelineCache<Program> cache_;
  std::atomic<int64_t> disk_hits_{0};
  std::atomic<int64_t> disk_us_{0};
};

}  // namespace kiln::opencl
