#include "proto/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kiln {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  std::string msg = absl::StrCat(what, " \"", path, "\": ", std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(msg) : absl::InvalidArgumentError(msg);
}

// Opens a regular file for reading. O_NONBLOCK keeps a FIFO from blocking the
// open; it is refused right after by the S_ISREG check.
absl::StatusOr<int> OpenRegular(const std::string& path, bool no_follow, uint64_t* size,
                                std::string* identity = nullptr) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (no_follow ? O_NOFOLLOW : 0));
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("cannot stat", path, err);
  }
  if (!S_ISREG(st.st_mode) || st.st_size < 0) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" is not a regular file"));
  }
  *size = static_cast<uint64_t>(st.st_size);
  if (identity) *identity = absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
  return fd;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const MappedFile>> MappedFile::Open(const std::string& path,
                                                                   bool no_follow) {
  uint64_t size = 0;
  std::string identity;
  auto fd = OpenRegular(path, no_follow, &size, &identity);
  if (!fd.ok()) return fd.status();
  const std::byte* data = nullptr;
  if (size > 0) {  // mmap refuses length 0
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, *fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(*fd);
      return ErrnoError("cannot map", path, err);
    }
    data = static_cast<const std::byte*>(p);
  }
  ::close(*fd);  // the mapping keeps the file alive
  return std::shared_ptr<const MappedFile>(new MappedFile(data, size, std::move(identity)));
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

absl::StatusOr<std::string> ReadCappedFile(const std::string& path, int64_t max_bytes) {
  uint64_t size = 0;
  auto fd = OpenRegular(path, /*no_follow=*/false, &size);
  if (!fd.ok()) return fd.status();
  if (size > static_cast<uint64_t>(max_bytes)) {
    ::close(*fd);
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" has ", size,
                                                   " bytes, more than the limit of ", max_bytes));
  }
  std::string bytes(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(*fd, bytes.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(*fd);
      return ErrnoError("cannot read", path, err);  // or it shrank while reading
    }
    done += static_cast<uint64_t>(n);
  }
  ::close(*fd);
  return bytes;
}

}  // namespace kiln
