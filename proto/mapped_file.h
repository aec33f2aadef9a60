// Read-only access to whole files: a memory map (for weights) and a plain
// read (for the graph file itself, which is parsed once and dropped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace kiln {

// A read-only, private memory map of a whole regular file. The bytes stay
// valid while the object lives (munmap on destruction). Truncating the file
// while it is mapped makes later reads fault; kiln never writes in place.
class MappedFile {
 public:
  // `no_follow`: refuse a symlink as the last path component.
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path,
                                                                bool no_follow);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }  // nullptr when empty
  uint64_t size() const { return size_; }
  // "device:inode:mtime" of the file when it was mapped: two mappings of the
  // same file have the same identity (weights shared by several graphs).
  const std::string& identity() const { return identity_; }

 private:
  MappedFile(const std::byte* data, uint64_t size, std::string identity)
      : data_(data), size_(size), identity_(std::move(identity)) {}
  const std::byte* data_;
  uint64_t size_;
  std::string identity_;
};

// Reads a whole regular file of at most `max_bytes` bytes (checked before
// reading, so a huge or endless file is refused without being read).
absl::StatusOr<std::string> ReadCappedFile(const std::string& path, int64_t max_bytes);

}  // namespace kiln
