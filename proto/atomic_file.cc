#include "proto/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace kiln {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  return absl::InternalError(absl::StrCat(what, " \"", path, "\": ", std::strerror(err)));
}

std::string FolderOf(const std::string& path) {
  std::string folder = std::filesystem::path(path).parent_path().string();
  return folder.empty() ? "." : folder;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  // O_EXCL with a name unique to this process and call; retried on a clash
  // with a leftover of another process. Mode 0666 lets the umask decide.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint64_t stamp = static_cast<uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
    std::string temp = absl::StrCat(path, ".tmp-", ::getpid(), "-", counter++, "-", stamp % 100000);
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return std::unique_ptr<AtomicFile>(new AtomicFile(path, std::move(temp), fd));
    if (errno != EEXIST) return ErrnoError("cannot create a temp file for", path, errno);
  }
  return absl::InternalError(absl::StrCat("cannot create a temp file for \"", path, "\""));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

absl::Status AtomicFile::Write(const void* data, size_t n) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat("\"", path_, "\" is closed"));
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return ErrnoError("cannot write", temp_, w < 0 ? errno : EIO);
    p += w;
    n -= static_cast<size_t>(w);
    size_ += static_cast<uint64_t>(w);
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::WriteZeros(size_t n) {
  static const char kZeros[256] = {};
  while (n > 0) {
    const size_t k = n < sizeof(kZeros) ? n : sizeof(kZeros);
    if (auto st = Write(kZeros, k); !st.ok()) return st;
    n -= k;
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::Sync() {
  if (fd_ < 0) return absl::OkStatus();
  if (::fsync(fd_) != 0) return ErrnoError("cannot sync", temp_, errno);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoError("cannot close", temp_, errno);
  return absl::OkStatus();
}

absl::Status AtomicFile::Commit() {
  if (committed_) return absl::OkStatus();
  if (auto st = Sync(); !st.ok()) return st;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) return ErrnoError("cannot rename onto", path_, errno);
  committed_ = true;
  // Make the rename itself durable.
  const std::string folder = FolderOf(path_);
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return ErrnoError("cannot open folder", folder, errno);
  const int rc = ::fsync(dir);
  const int err = errno;
  ::close(dir);
  if (rc != 0 && err != EINVAL) return ErrnoError("cannot sync folder", folder, err);
  return absl::OkStatus();
}

}  // namespace kiln
