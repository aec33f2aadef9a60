#include "backends/disk_cache.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/cache_dir.h"
#include "base/atomic_file.h"
#include "base/read_file.h"
#include "base/stable_hash.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// File layout, little-endian:
//   0  char[8]  magic "KILNPIPE"
//   8  u32      format version (kDiskCacheFormatVersion)
//  12  u32      key size K
//  16  u64      payload size P
//  24  u64      StableHash64(payload, kChecksumSeed)
//  32  char[K]  DiskCacheKey::Canonical()
//  32+K char[P] payload
constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'I', 'P', 'E'};
constexpr size_t kHeaderSize = 32;
constexpr uint64_t kChecksumSeed = 0x6b696c6e2d706331ULL;  // "kiln-pc1"
constexpr uint32_t kMaxKeySize = 64 << 10;
constexpr const char* kSuffix = ".kpc";
// Temp files of writers that died are removed once this old.
constexpr auto kStaleTempAge = std::chrono::hours(1);

void PutU32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLE(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

// Like mkdir -p, but the folders it makes are private (0700): pipeline
// binaries are the user's.
absl::Status MakePrivateDirs(const std::string& dir) {
  fs::path so_far;
  for (const fs::path& part : fs::path(dir)) {
    so_far /= part;
    if (part.empty() || part == "/") continue;
    if (::mkdir(so_far.c_str(), 0700) == 0 || errno == EEXIST) continue;
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create the cache folder \"", so_far.string(), "\""));
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("the cache folder \"", dir, "\" is not a folder"));
  }
  return absl::OkStatus();
}

// Bytes of a number like "1048576", "512M", "2G"; nullopt if not one.
std::optional<uint64_t> ParseBytes(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s);
  uint64_t scale = 1;
  if (!s.empty()) {
    switch (absl::ascii_toupper(s.back())) {
      case 'K': scale = uint64_t{1} << 10; break;
      case 'M': scale = uint64_t{1} << 20; break;
      case 'G': scale = uint64_t{1} << 30; break;
      default: break;
    }
    if (scale != 1) s.remove_suffix(1);
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(s, &n) || n > UINT64_MAX / scale) return std::nullopt;
  return n * scale;
}

void ReportToStderr(absl::string_view message) {
  std::fprintf(stderr, "kiln: pipeline cache: %.*s\n", static_cast<int>(message.size()), message.data());
}

}  // namespace

std::string DiskCacheKey::Canonical() const {
  return absl::StrCat("kiln pipeline cache entry, format ", kDiskCacheFormatVersion,
                      "\nbackend ", absl::CEscape(backend),
                      "\ndevice ", absl::CEscape(device),
                      "\ndriver ", absl::CEscape(driver),
                      "\nsource ", absl::StrFormat("%016x", source_hash),
                      "\noptions ", absl::CEscape(options), "\n");
}

DiskCacheOptions DiskCacheOptions::FromEnvironment() {
  DiskCacheOptions o;
  const std::string root = PipelineCacheDir();
  if (!root.empty()) o.dir = root + "/pipelines";
  if (const char* cap = std::getenv("KILN_CACHE_MAX_BYTES"); cap && *cap) {
    if (auto n = ParseBytes(cap)) {
      o.max_bytes = *n;
    } else {
      ReportToStderr(absl::StrCat("KILN_CACHE_MAX_BYTES=\"", cap, "\" is not a size (e.g. 268435456, 256M); using ",
                                  kDiskCacheDefaultMaxBytes, " bytes"));
    }
  }
  return o;
}

DiskCache::DiskCache(DiskCacheOptions options) : options_(std::move(options)) {
  if (!options_.report) options_.report = ReportToStderr;
}

std::string DiskCache::PathFor(const DiskCacheKey& key) const {
  return (fs::path(options_.dir) / (StableHashHex128(key.Canonical()) + kSuffix)).string();
}

void DiskCache::Reject(const std::string& path, absl::string_view why) {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.rejected;
    first = reported_.insert(path).second;
  }
  if (first) options_.report(absl::StrCat("ignoring \"", path, "\": ", why, "; it will be rebuilt"));
}

std::optional<std::string> DiskCache::Load(const DiskCacheKey& key) {
  if (!enabled()) return std::nullopt;
  const std::string path = PathFor(key);
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (ec || st.type() == fs::file_type::not_found) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.misses;
    return std::nullopt;
  }
  if (st.type() != fs::file_type::regular) {
    Reject(path, "not a regular file");
    return std::nullopt;
  }
  auto bytes = ReadFile(path, static_cast<int64_t>(options_.max_bytes + kHeaderSize + kMaxKeySize));
  if (!bytes.ok()) {
    if (absl::IsNotFound(bytes.status())) {  // removed since the stat (evicted by another process)
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.misses;
    } else {
      Reject(path, bytes.status().message());
    }
    return std::nullopt;
  }
  const std::string& b = *bytes;
  if (b.size() < kHeaderSize) {
    Reject(path, absl::StrCat("truncated: ", b.size(), " bytes, shorter than the header"));
    return std::nullopt;
  }
  if (std::memcmp(b.data(), kMagic, sizeof kMagic) != 0) {
    Reject(path, "not a kiln pipeline cache file (bad magic)");
    return std::nullopt;
  }
  const uint32_t version = static_cast<uint32_t>(GetLE(b, 8, 4));
  if (version != kDiskCacheFormatVersion) {
    Reject(path, absl::StrCat("stale: format version ", version, ", this build writes ", kDiskCacheFormatVersion));
    return std::nullopt;
  }
  const uint64_t key_size = GetLE(b, 12, 4);
  const uint64_t payload_size = GetLE(b, 16, 8);
  const uint64_t checksum = GetLE(b, 24, 8);
  if (key_size > kMaxKeySize || payload_size > b.size() || kHeaderSize + key_size + payload_size != b.size()) {
    Reject(path, absl::StrCat("truncated or corrupt: ", b.size(), " bytes, the header says ",
                              kHeaderSize, " + ", key_size, " + ", payload_size));
    return std::nullopt;
  }
  if (absl::string_view(b).substr(kHeaderSize, key_size) != key.Canonical()) {
    Reject(path, "stale: written for another key (or a corrupt header)");
    return std::nullopt;
  }
  std::string payload = b.substr(kHeaderSize + key_size);
  if (StableHash64(payload, kChecksumSeed) != checksum) {
    Reject(path, "corrupt: the payload does not match its checksum");
    return std::nullopt;
  }
  // Recently used: eviction goes by mtime.
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.hits;
  return payload;
}

absl::Status DiskCache::Store(const DiskCacheKey& key, absl::string_view payload) {
  if (!enabled()) return absl::OkStatus();
  const std::string canonical = key.Canonical();
  const std::string path = PathFor(key);
  auto fail = [&](absl::Status st) {
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      first = !store_failure_reported_;
      store_failure_reported_ = true;
    }
    if (first) options_.report(absl::StrCat("cannot store an entry (later failures are not reported): ", st.message()));
    return st;
  };
  if (canonical.size() > kMaxKeySize) {
    return fail(absl::InvalidArgumentError(absl::StrCat("the key of \"", path, "\" has ", canonical.size(),
                                                        " bytes, more than ", kMaxKeySize)));
  }
  const uint64_t total = kHeaderSize + canonical.size() + payload.size();
  if (total > options_.max_bytes) {
    return fail(absl::ResourceExhaustedError(absl::StrCat("an entry of ", total, " bytes is over the cap of ",
                                                          options_.max_bytes, " bytes (KILN_CACHE_MAX_BYTES)")));
  }
  if (auto st = MakePrivateDirs(options_.dir); !st.ok()) return fail(st);
  // A folder (or anything but a file) where the entry should be: the rename
  // could not replace it, so it goes first. The name is ours (a hash).
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (!ec && st.type() != fs::file_type::not_found && st.type() != fs::file_type::regular) {
    fs::remove_all(path, ec);
    if (ec) return fail(absl::InternalError(absl::StrCat("cannot remove \"", path, "\": ", ec.message())));
  }

  std::string header(kMagic, sizeof kMagic);
  PutU32(header, kDiskCacheFormatVersion);
  PutU32(header, static_cast<uint32_t>(canonical.size()));
  PutU64(header, payload.size());
  PutU64(header, StableHash64(payload, kChecksumSeed));
  header += canonical;
  auto file = AtomicFile::Create(path);
  if (!file.ok()) return fail(file.status());
  if (auto s = (*file)->Write(header); !s.ok()) return fail(s);
  if (auto s = (*file)->Write(payload); !s.ok()) return fail(s);
  if (auto s = (*file)->Commit(); !s.ok()) return fail(s);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.stores;
    reported_.erase(path);  // a new problem with it is news again
  }
  Evict(path);
  return absl::OkStatus();
}

namespace {

struct EntryFile {
  fs::file_time_type mtime;
  uint64_t size;
  std::string path;
};

// The entries in `dir`; with `remove_stale_temps`, also removes temp files
// of writers that died long ago.
std::vector<EntryFile> ListEntries(const std::string& dir, bool remove_stale_temps) {
  std::vector<EntryFile> entries;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return entries;
  const auto now = fs::file_time_type::clock::now();
  for (const fs::directory_entry& e : it) {
    std::error_code e_ec;
    if (!e.is_regular_file(e_ec)) continue;
    const std::string name = e.path().filename().string();
    const auto mtime = e.last_write_time(e_ec);
    if (e_ec) continue;
    if (name.size() > 4 && name.ends_with(kSuffix) && name[0] != '.') {
      const uint64_t size = e.file_size(e_ec);
      if (!e_ec) entries.push_back({mtime, size, e.path().string()});
    } else if (remove_stale_temps && name[0] == '.' && name.find(".tmp-") != std::string::npos &&
               now - mtime > kStaleTempAge) {
      fs::remove(e.path(), e_ec);
    }
  }
  return entries;
}

}  // namespace

uint64_t DiskCache::UsedBytes() const {
  uint64_t total = 0;
  for (const EntryFile& e : ListEntries(options_.dir, false)) total += e.size;
  return total;
}

void DiskCache::Evict(const std::string& keep) {
  std::vector<EntryFile> entries = ListEntries(options_.dir, true);
  uint64_t total = 0;
  for (const EntryFile& e : entries) total += e.size;
  if (total <= options_.max_bytes) return;
  std::sort(entries.begin(), entries.end(),
            [](const EntryFile& a, const EntryFile& b) { return a.mtime < b.mtime; });
  int64_t evicted = 0;
  for (const EntryFile& e : entries) {
    if (total <= options_.max_bytes) break;
    if (e.path == keep) continue;
    std::error_code ec;
    // Another process may have removed it first; either way it is gone.
    fs::remove(e.path, ec);
    total -= e.size;
    ++evicted;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.evicted += evicted;
}

DiskCacheStats DiskCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace kiln
