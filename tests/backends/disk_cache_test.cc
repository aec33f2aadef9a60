// DiskCache: round trips, entries corrupted on purpose (each ignored,
// reported once and rewritten by the next Store), eviction under the cap,
// the environment switches, and writers racing on one entry.
#include "backends/disk_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/cache_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class DiskCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("disk_cache_test_" + std::to_string(::getpid()) + "_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  DiskCacheOptions Options(uint64_t max_bytes = kDiskCacheDefaultMaxBytes) {
    DiskCacheOptions o;
    o.dir = (dir_ / "pipelines").string();
    o.max_bytes = max_bytes;
    o.report = [this](absl::string_view m) { reports_.emplace_back(m); };
    return o;
  }

  static DiskCacheKey Key(const std::string& options = "fa[128,64] wg=64x1x1") {
    return DiskCacheKey{.backend = "vulkan", .device = "10de:2684 NVIDIA GeForce RTX 4090",
                        .driver = "550.54.14", .source_hash = 0x1234, .options = options};
  }

  static std::string Read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  static void Write(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
  }

  fs::path dir_;
  std::vector<std::string> reports_;
};

TEST_F(DiskCacheTest, StoresAndLoads) {
  DiskCache cache(Options());
  EXPECT_EQ(cache.Load(Key()), std::nullopt);  // nothing yet, and no folder
  EXPECT_FALSE(fs::exists(cache.dir()));
  const std::string blob("pipeline\0bytes", 14);
  ASSERT_TRUE(cache.Store(Key(), blob).ok());
  EXPECT_EQ(cache.Load(Key()), blob);
  EXPECT_EQ(cache.Load(Key("other options")), std::nullopt);
  ASSERT_TRUE(cache.Store(Key(), "replaced").ok());
  EXPECT_EQ(cache.Load(Key()), "replaced");
  ASSERT_TRUE(cache.Store(Key("empty"), "").ok());
  EXPECT_EQ(cache.Load(Key("empty")), "");
  EXPECT_TRUE(reports_.empty());
  const DiskCacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 3);
  EXPECT_EQ(s.misses, 2);
  EXPECT_EQ(s.stores, 3);
  EXPECT_EQ(s.rejected, 0);

  // Another instance (another process) sees the same entries.
  DiskCache again(Options());
  EXPECT_EQ(again.Load(Key()), "replaced");

  // The folder is private, and only the entries are in it: no temporaries.
  struct stat st;
  ASSERT_EQ(::stat(cache.dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
  int files = 0;
  for (const auto& e : fs::directory_iterator(cache.dir())) {
    ++files;
    EXPECT_EQ(e.path().extension(), ".kpc") << e.path();
  }
  EXPECT_EQ(files, 2);
}

TEST_F(DiskCacheTest, KeyFieldsNameDifferentFiles) {
  DiskCache cache(Options());
  const DiskCacheKey k = Key();
  std::vector<DiskCacheKey> keys(5, k);
  keys[0].backend = "opencl";
  keys[1].device = "other device";
  keys[2].driver = "551.0";
  keys[3].source_hash = 0x1235;
  keys[4].options = "-DHEAD_DIM=64";
  for (const DiskCacheKey& other : keys) {
    EXPECT_NE(cache.PathFor(other), cache.PathFor(k));
    EXPECT_NE(other.Canonical(), k.Canonical());
  }
  EXPECT_EQ(cache.PathFor(Key()), cache.PathFor(k));
  EXPECT_THAT(k.Canonical(), HasSubstr("format 1"));
  // Values are escaped, so no field can forge another.
  DiskCacheKey tricky = k;
  tricky.driver = "550.54.14\nsource 0000000000001234";
  EXPECT_THAT(tricky.Canonical(), HasSubstr("550.54.14\\nsource"));
}

// Each way an entry can go bad: ignored, reported once, rewritten by Store.
struct Damage {
  const char* name;
  void (*apply)(const std::string& path);
};

void Truncate(const std::string& path) { fs::resize_file(path, fs::file_size(path) - 3); }
void TruncateIntoHeader(const std::string& path) { fs::resize_file(path, 10); }
void ZeroLength(const std::string& path) { fs::resize_file(path, 0); }
void FlipByteAt(const std::string& path, std::streamoff at_from_end_or_start, bool from_end) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  const std::streamoff size = static_cast<std::streamoff>(fs::file_size(path));
  const std::streamoff at = from_end ? size - at_from_end_or_start : at_from_end_or_start;
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(at);
  f.write(&c, 1);
}
void FlipPayloadByte(const std::string& path) { FlipByteAt(path, 2, true); }
void FlipMagicByte(const std::string& path) { FlipByteAt(path, 1, false); }
void FlipPayloadSize(const std::string& path) { FlipByteAt(path, 16, false); }
void FlipChecksumByte(const std::string& path) { FlipByteAt(path, 25, false); }
void FlipKeyByte(const std::string& path) { FlipByteAt(path, 40, false); }
void WrongVersion(const std::string& path) { FlipByteAt(path, 8, false); }  // version 1 -> 0x41
void Appended(const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::app);
  f << "junk";
}
void ADirectory(const std::string& path) {
  fs::remove(path);
  fs::create_directories(fs::path(path) / "inside");
}
void NotOurs(const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << "some other program wrote this file, long enough for a header";
}

const Damage kDamages[] = {
    {"truncated", Truncate},
    {"truncated into the header", TruncateIntoHeader},
    {"zero length", ZeroLength},
    {"a payload byte flipped", FlipPayloadByte},
    {"a magic byte flipped", FlipMagicByte},
    {"the payload size flipped", FlipPayloadSize},
    {"a checksum byte flipped", FlipChecksumByte},
    {"a key byte flipped", FlipKeyByte},
    {"another format version", WrongVersion},
    {"bytes appended", Appended},
    {"a directory", ADirectory},
    {"not a cache file", NotOurs},
};

TEST_F(DiskCacheTest, DamagedEntriesAreIgnoredReportedOnceAndRewritten) {
  DiskCache cache(Options());
  const std::string blob(1000, 'p');
  for (const Damage& d : kDamages) {
    SCOPED_TRACE(d.name);
    reports_.clear();
    ASSERT_TRUE(cache.Store(Key(), blob).ok());
    ASSERT_EQ(cache.Load(Key()), blob);
    d.apply(cache.PathFor(Key()));
    EXPECT_EQ(cache.Load(Key()), std::nullopt);
    EXPECT_EQ(cache.Load(Key()), std::nullopt);
    ASSERT_EQ(reports_.size(), 1u);  // once, not per Load
    EXPECT_THAT(reports_[0], HasSubstr(cache.PathFor(Key())));
    ASSERT_TRUE(cache.Store(Key(), blob).ok()) << "rewriting";
    EXPECT_EQ(cache.Load(Key()), blob);
    EXPECT_EQ(reports_.size(), 1u);
  }
  EXPECT_EQ(cache.stats().rejected, 2 * static_cast<int64_t>(std::size(kDamages)));
}

TEST_F(DiskCacheTest, AnEntryOfAnotherKeyAtThePathIsStale) {
  // As after a hash collision: the header's key is compared, not just the name.
  DiskCache cache(Options());
  ASSERT_TRUE(cache.Store(Key("a"), "payload of a").ok());
  fs::copy_file(cache.PathFor(Key("a")), cache.PathFor(Key("b")));
  EXPECT_EQ(cache.Load(Key("b")), std::nullopt);
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_THAT(reports_[0], HasSubstr("another key"));
  EXPECT_EQ(cache.Load(Key("a")), "payload of a");
}

TEST_F(DiskCacheTest, TheReportSaysWhatWasWrong) {
  DiskCache cache(Options());
  ASSERT_TRUE(cache.Store(Key(), "x").ok());
  WrongVersion(cache.PathFor(Key()));
  EXPECT_EQ(cache.Load(Key()), std::nullopt);
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_THAT(reports_[0], HasSubstr("format version"));
  EXPECT_THAT(reports_[0], HasSubstr("rebuilt"));
}

TEST_F(DiskCacheTest, EvictsTheLeastRecentlyUsedToStayUnderTheCap) {
  const std::string blob(1000, 'b');
  const uint64_t entry = 32 + Key("k0").Canonical().size() + blob.size();  // all keys here are as long
  DiskCache cache(Options(3 * entry + entry / 2));                          // room for three
  const auto t0 = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) {
    const std::string k = "k" + std::to_string(i);
    ASSERT_TRUE(cache.Store(Key(k), blob).ok());
    fs::last_write_time(cache.PathFor(Key(k)), t0 + std::chrono::minutes(i));  // k0 oldest
  }
  EXPECT_EQ(cache.UsedBytes(), 3 * entry);
  ASSERT_TRUE(cache.Load(Key("k0")).has_value());  // touched: now the newest
  ASSERT_TRUE(cache.Store(Key("k3"), blob).ok());
  EXPECT_EQ(cache.stats().evicted, 1);
  EXPECT_FALSE(fs::exists(cache.PathFor(Key("k1"))));  // the least recently used went
  EXPECT_TRUE(cache.Load(Key("k0")).has_value());
  EXPECT_TRUE(cache.Load(Key("k2")).has_value());
  EXPECT_TRUE(cache.Load(Key("k3")).has_value());
  EXPECT_LE(cache.UsedBytes(), cache.max_bytes());
  EXPECT_TRUE(reports_.empty());
}

TEST_F(DiskCacheTest, AnEntryOverTheCapIsNotStored) {
  DiskCache cache(Options(512));
  const absl::Status st = cache.Store(Key(), std::string(1000, 'x'));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(cache.Load(Key()), std::nullopt);
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_THAT(reports_[0], HasSubstr("over the cap"));
  EXPECT_FALSE(cache.Store(Key(), std::string(1000, 'x')).ok());
  EXPECT_EQ(reports_.size(), 1u);  // store failures are reported once too
}

TEST_F(DiskCacheTest, StoreRemovesTempFilesOfDeadWritersButNotFreshOnes) {
  DiskCache cache(Options());
  fs::create_directories(cache.dir());
  const std::string old_temp = (fs::path(cache.dir()) / ".abc.kpc.tmp-1-2-3").string();
  const std::string new_temp = (fs::path(cache.dir()) / ".def.kpc.tmp-1-2-4").string();
  Write(old_temp, "left by a crash");
  Write(new_temp, "being written");
  fs::last_write_time(old_temp, fs::file_time_type::clock::now() - std::chrono::hours(2));
  ASSERT_TRUE(cache.Store(Key(), "x").ok());
  EXPECT_FALSE(fs::exists(old_temp));
  EXPECT_TRUE(fs::exists(new_temp));
}

TEST_F(DiskCacheTest, OffWhenTheFolderIsEmpty) {
  DiskCacheOptions o = Options();
  o.dir = "";
  DiskCache cache(o);
  EXPECT_FALSE(cache.enabled());
  EXPECT_TRUE(cache.Store(Key(), "x").ok());
  EXPECT_EQ(cache.Load(Key()), std::nullopt);
}

TEST_F(DiskCacheTest, StoreFailsCleanlyWhenTheFolderCannotBeMade) {
  fs::create_directories(dir_);
  Write((dir_ / "file").string(), "a file, not a folder");
  DiskCacheOptions o = Options();
  o.dir = (dir_ / "file" / "pipelines").string();
  DiskCache cache(o);
  EXPECT_FALSE(cache.Store(Key(), "x").ok());
  EXPECT_EQ(cache.Load(Key()), std::nullopt);
  EXPECT_EQ(reports_.size(), 1u);
}

TEST_F(DiskCacheTest, ConcurrentWritersOfOneEntryLeaveOneValidFile) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      DiskCache cache(Options());  // one per thread, like separate processes
      const std::string blob(20000 + t, static_cast<char>('a' + t));
      for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(cache.Store(Key(), blob).ok());
        auto got = cache.Load(Key());
        ASSERT_TRUE(got.has_value());  // some writer's complete entry, never a torn one
        EXPECT_EQ(got->size(), 20000u + (got->at(0) - 'a'));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(reports_.empty());
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "pipelines")) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

class CacheEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"KILN_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "KILN_CACHE_MAX_BYTES"}) {
      const char* old = std::getenv(v);
      saved_.emplace_back(v, old ? std::optional<std::string>(old) : std::nullopt);
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(CacheEnvTest, FolderAndCapComeFromTheEnvironment) {
  ::setenv("KILN_CACHE_DIR", "/tmp/kiln-cache-here", 1);
  ::unsetenv("KILN_CACHE_MAX_BYTES");
  EXPECT_EQ(PipelineCacheDir(), "/tmp/kiln-cache-here");
  DiskCacheOptions o = DiskCacheOptions::FromEnvironment();
  EXPECT_EQ(o.dir, "/tmp/kiln-cache-here/pipelines");
  EXPECT_EQ(o.max_bytes, kDiskCacheDefaultMaxBytes);
  ::setenv("KILN_CACHE_MAX_BYTES", "64M", 1);
  EXPECT_EQ(DiskCacheOptions::FromEnvironment().max_bytes, uint64_t{64} << 20);
  ::setenv("KILN_CACHE_MAX_BYTES", "12345", 1);
  EXPECT_EQ(DiskCacheOptions::FromEnvironment().max_bytes, 12345u);
  ::setenv("KILN_CACHE_MAX_BYTES", "lots", 1);
  EXPECT_EQ(DiskCacheOptions::FromEnvironment().max_bytes, kDiskCacheDefaultMaxBytes);
  ::unsetenv("KILN_CACHE_MAX_BYTES");

  for (const char* off : {"", "off"}) {
    ::setenv("KILN_CACHE_DIR", off, 1);
    EXPECT_EQ(PipelineCacheDir(), "");
    EXPECT_FALSE(DiskCache(DiskCacheOptions::FromEnvironment()).enabled());
  }
  ::unsetenv("KILN_CACHE_DIR");
  ::setenv("XDG_CACHE_HOME", "/x", 1);
  EXPECT_EQ(PipelineCacheDir(), "/x/kiln");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(PipelineCacheDir(), "/home/u/.cache/kiln");
}

}  // namespace
}  // namespace kiln
