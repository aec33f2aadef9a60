#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace kiln {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  return absl::ErrnoToStatus(err, absl::StrCat("cannot ", what, " \"", path, "\""));
}

std::string FolderOf(const std::string& path) {
  std::string folder = std::filesystem::path(path).parent_path().string();
  return folder.empty() ? "." : folder;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path target(path);
  if (target.filename().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" names no file"));
  }
  // O_EXCL with a name unique to this process and call; retried on a clash
  // with a leftover of another process. Mode 0666 lets the umask decide.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint64_t stamp =
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    const std::string name = absl::StrCat(".", target.filename().string(), ".tmp-", ::getpid(), "-",
                                          counter++, "-", stamp % 1000000);
    std::string temp = target.has_parent_path() ? (target.parent_path() / name).string() : name;
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return std::unique_ptr<AtomicFile>(new AtomicFile(path, std::move(temp), fd));
    if (errno != EEXIST) return ErrnoError("create a temp file next to", path, errno);
  }
  return absl::InternalError(absl::StrCat("cannot create a temp file next to \"", path, "\""));
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
    if (w <= 0) return ErrnoError("write", temp_, w < 0 ? errno : EIO);
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
  if (::fsync(fd_) != 0) return ErrnoError("sync", temp_, errno);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoError("close", temp_, errno);
  return absl::OkStatus();
}

absl::Status AtomicFile::Commit() {
  if (committed_) return absl::OkStatus();
  if (auto st = Sync(); !st.ok()) return st;
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) return ErrnoError("rename a file onto", path_, errno);
  committed_ = true;
  // Make the rename itself durable.
  const std::string folder = FolderOf(path_);
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return ErrnoError("open folder", folder, errno);
  const int rc = ::fsync(dir);
  const int err = errno;
  ::close(dir);
  if (rc != 0 && err != EINVAL) return ErrnoError("sync folder", folder, err);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes) {
  auto file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  if (auto st = (*file)->Write(bytes); !st.ok()) return st;
  return (*file)->Commit();
}

}  // namespace kiln
