// The one atomic file writer (and ReadFile): the target is replaced whole or
// not at all, and no temp file is left behind, failing or not.
#include "base/atomic_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/read_file.h"
#include "base/stable_hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("atomic_file_test_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  int FilesInDir() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) n += e.is_regular_file() || e.is_directory();
    return n;
  }

  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesAndReplacesLeavingNoTemporaries) {
  const std::string path = (dir_ / "out.json").string();
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(*ReadFile(path, 100), "first");
  ASSERT_TRUE(WriteFileAtomically(path, std::string("second\0x", 8)).ok());
  EXPECT_EQ(*ReadFile(path, 100), std::string("second\0x", 8));
  EXPECT_EQ(FilesInDir(), 1);
}

TEST_F(AtomicFileTest, TheTargetIsUntouchedUntilCommit) {
  const std::string path = (dir_ / "graph.kgraph").string();
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  auto file = AtomicFile::Create(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Write("new ").ok());
  ASSERT_TRUE((*file)->WriteZeros(3).ok());
  EXPECT_EQ((*file)->size(), 7u);
  EXPECT_EQ(fs::path((*file)->temp_path()).parent_path(), dir_);  // same folder: the rename is atomic
  EXPECT_EQ(*ReadFile(path, 100), "old");
  ASSERT_TRUE((*file)->Sync().ok());
  EXPECT_EQ(*ReadFile(path, 100), "old");
  ASSERT_TRUE((*file)->Commit().ok());
  EXPECT_EQ(*ReadFile(path, 100), std::string("new \0\0\0", 7));
  EXPECT_EQ(FilesInDir(), 1);
}

TEST_F(AtomicFileTest, ADroppedFileRemovesItsTemporary) {
  const std::string path = (dir_ / "x.npy").string();
  {
    auto file = AtomicFile::Create(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Write("partial").ok());
    EXPECT_TRUE(fs::exists((*file)->temp_path()));
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(FilesInDir(), 0);
}

TEST_F(AtomicFileTest, AFailedRenameRemovesItsTemporary) {
  const fs::path target = dir_ / "taken";
  fs::create_directories(target / "not empty");
  const absl::Status st = WriteFileAtomically(target.string(), "bytes");
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), ::testing::HasSubstr("taken"));
  EXPECT_EQ(FilesInDir(), 1);  // only the folder
}

TEST_F(AtomicFileTest, ErrorsNameThePathAndKeepTheErrnoCode) {
  const absl::Status st = WriteFileAtomically((dir_ / "no" / "such" / "x").string(), "bytes");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), ::testing::HasSubstr("no/such/x"));
  EXPECT_FALSE(WriteFileAtomically(dir_.string() + "/", "bytes").ok());  // names no file
}

TEST_F(AtomicFileTest, HonoursTheUmask) {
  const std::string path = (dir_ / "report.json").string();
  const mode_t old = ::umask(027);
  ASSERT_TRUE(WriteFileAtomically(path, "{}").ok());
  ::umask(old);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640);
}

TEST(ReadFile, RefusesFoldersMissingFilesAndFilesOverTheLimit) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("read_file_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "f").string();
  ASSERT_TRUE(WriteFileAtomically(path, "0123456789").ok());
  EXPECT_EQ(*ReadFile(path, 10), "0123456789");
  EXPECT_EQ(ReadFile(path, 9).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadFile((dir / "missing").string(), 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(ReadFile(dir.string(), 10).ok());
  fs::remove_all(dir);
}

TEST(StableHash, IsStableAcrossBuildsAndProcesses) {
  // Fixed values: file names and source hashes must never change silently.
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(StableHash64("", 0), 0u);
  EXPECT_EQ(StableHash64("abcdefghij"), 0xa33f0dbf245bcb51ULL);  // a full block and a tail
  EXPECT_EQ(StableHash64("hello world", 1), 0x26487f815882e16dULL);
  EXPECT_EQ(StableHashHex128("kiln"), "bb886b882ca7d012ef9580d72160ee33");
  EXPECT_NE(StableHash64("abcdefgh"), StableHash64("abcdefgi"));
  EXPECT_NE(StableHash64("abc", 1), StableHash64("abc", 2));
  EXPECT_EQ(StableHashHex128("kiln").size(), 32u);
  EXPECT_EQ(StableHashHex128("kiln"), StableHashHex128(std::string("kiln")));
}

}  // namespace
}  // namespace kiln
