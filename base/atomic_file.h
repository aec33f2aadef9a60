// Writing a file atomically: readers see the old file or the complete new
// one, never a torn mix. The one writer of the whole project: graph files and
// weights (proto/), pipeline cache entries (backends/), reports and .npy
// outputs (tools/).
//
// It lives in base/, a library below everything else (graph/ + ops/ link it,
// so proto/, backends/, scheduler/ and tools/ all get it), because the data
// flow proto -> graph -> scheduler -> backends leaves no other folder that
// both proto/ and backends/ may depend on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kiln {

// Data goes to a hidden temp file in the target's folder (so the rename stays
// on one file system), created with mode 0666 less the umask. Sync() flushes
// it to disk; Commit() syncs, renames it over the target and syncs the
// folder. A file dropped before Commit(), or whose Commit() failed, removes
// its temp file and leaves the target alone.
class AtomicFile {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  absl::Status Write(const void* data, size_t n);
  absl::Status Write(absl::string_view bytes) { return Write(bytes.data(), bytes.size()); }
  absl::Status WriteZeros(size_t n);
  uint64_t size() const { return size_; }  // bytes written so far
  const std::string& temp_path() const { return temp_; }
  absl::Status Sync();
  absl::Status Commit();

 private:
  AtomicFile(std::string path, std::string temp, int fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}
  std::string path_, temp_;
  int fd_;  // -1 once closed
  uint64_t size_ = 0;
  bool committed_ = false;
};

// The whole of `bytes` as the new contents of `path`, through an AtomicFile.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes);

}  // namespace kiln
