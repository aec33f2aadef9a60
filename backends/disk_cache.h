// DiskCache: the on-disk layer of the pipeline caches, shared by the GPU
// backends (VkPipelineCache blobs, OpenCL program binaries). One file per
// entry in <PipelineCacheDir()>/pipelines/, named by a 128-bit hash of the
// entry's canonical key, holding a header (magic, format version, the whole
// canonical key, payload size and checksum) and the payload. Writes are
// atomic (AtomicFile); a truncated, corrupt or stale file is ignored,
// reported once and replaced by the next Store; the folder is kept under a
// byte cap by removing the least recently used entries (mtime; a Load
// touches its file). See docs/DESIGN.md, "backends/".
//
// A GPU backend's factory, under its PipelineCache (pipeline_cache.h):
//
//   auto p = cache_.GetOrCreate(key, [&](PipelineOrigin& origin) -> absl::StatusOr<std::unique_ptr<P>> {
//     const DiskCacheKey dk{"vulkan", device_id_, driver_version_, key.source_hash, key.Canonical()};
//     if (std::optional<std::string> blob = disk_.Load(dk)) {
//       auto made = CreateFromBlob(key, *blob);  // a blob the driver refuses: compile instead
//       if (made.ok()) {
//         origin.from_disk = true;
//         return made;
//       }
//     }
//     auto made = Compile(key);
//     if (made.ok()) (void)disk_.Store(dk, BlobOf(**made));  // failures are reported once
//     return made;
//   });
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kiln {

// Bumped whenever the file layout or the meaning of a payload changes; files
// of another version are stale.
inline constexpr uint32_t kDiskCacheFormatVersion = 1;
inline constexpr uint64_t kDiskCacheDefaultMaxBytes = uint64_t{256} << 20;

// Everything the payload depends on. Two keys with the same canonical form
// share an entry.
struct DiskCacheKey {
  std::string backend;       // "vulkan", "opencl"
  std::string device;        // what identifies the device: vendor/device ids, UUID, name
  std::string driver;        // driver version
  uint64_t source_hash = 0;  // StableHash64 of the kernel source / SPIR-V
  std::string options;       // build options, PipelineKey::Canonical(), ...

  // One line per field, each value C-escaped, plus the format version.
  std::string Canonical() const;
};

struct DiskCacheOptions {
  std::string dir;  // the cache folder; empty: the disk layer is off
  uint64_t max_bytes = kDiskCacheDefaultMaxBytes;
  // Receives each warning (a rejected entry, a failed store); the default
  // prints "kiln: pipeline cache: ..." on stderr.
  std::function<void(absl::string_view)> report;

  // dir = PipelineCacheDir() + "/pipelines" (off when KILN_CACHE_DIR is set
  // but empty or "off"); max_bytes = $KILN_CACHE_MAX_BYTES when it is a
  // number, with an optional K, M or G suffix (powers of 1024).
  static DiskCacheOptions FromEnvironment();
};

struct DiskCacheStats {
  int64_t hits = 0;       // Load found a valid entry
  int64_t misses = 0;     // Load found no file
  int64_t rejected = 0;   // Load found a file and ignored it (corrupt, truncated, stale)
  int64_t stores = 0;     // entries written
  int64_t evicted = 0;    // entries removed to stay under the cap
};

// Thread-safe; several processes may share one folder.
class DiskCache {
 public:
  explicit DiskCache(DiskCacheOptions options);
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  bool enabled() const { return !options_.dir.empty(); }
  const std::string& dir() const { return options_.dir; }
  uint64_t max_bytes() const { return options_.max_bytes; }

  // The payload stored for `key`, or nullopt: off, no entry, or an entry
  // that is not valid for `key` (reported the first time).
  std::optional<std::string> Load(const DiskCacheKey& key);

  // Writes (or replaces) the entry, then removes the least recently used
  // entries until the folder is under the cap. Creates the folder (0700)
  // when missing. A payload over the cap is not stored. Errors are for the
  // caller to report or ignore: a backend still has its pipeline.
  absl::Status Store(const DiskCacheKey& key, absl::string_view payload);

  // Where the entry for `key` lives (for tests and diagnostics).
  std::string PathFor(const DiskCacheKey& key) const;

  // Total bytes of the entries now in the folder.
  uint64_t UsedBytes() const;

  DiskCacheStats stats() const;

 private:
  void Reject(const std::string& path, absl::string_view why);
  void Evict(const std::string& keep);

  DiskCacheOptions options_;
  mutable std::mutex mu_;
  absl::flat_hash_set<std::string> reported_;  // paths rejected already, until rewritten
  bool store_failure_reported_ = false;
  DiskCacheStats stats_;
};

}  // namespace kiln
