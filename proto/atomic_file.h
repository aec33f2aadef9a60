// Writing a file atomically: readers see the old file or the complete new one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kiln {

// Data goes to a temp file in the target's folder. Sync() flushes it to disk;
// Commit() syncs, renames it over the target and syncs the folder. A file
// dropped before Commit() removes its temp file and leaves the target alone.
class AtomicFile {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  absl::Status Write(const void* data, size_t n);
  absl::Status WriteZeros(size_t n);
  uint64_t size() const { return size_; }  // bytes written so far
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

}  // namespace kiln
