#include "tools/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace kiln::tools {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  const int err = errno;
  const absl::StatusCode code = err == ENOENT   ? absl::StatusCode::kNotFound
                                : err == EACCES ? absl::StatusCode::kPermissionDenied
                                                : absl::StatusCode::kUnknown;
  return absl::Status(code, absl::StrCat("cannot ", what, " '", path, "': ", std::strerror(err)));
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes) {
  return WriteFileAtomically(path, std::vector<absl::string_view>{bytes});
}

absl::Status WriteFileAtomically(const std::string& path, const std::vector<absl::string_view>& parts) {
  // A hidden temporary in the target's folder, so the rename stays on one
  // file system.
  const std::filesystem::path target(path);
  const std::string name = absl::StrCat(".", target.filename().string(), ".tmp-XXXXXX");
  std::string tmpl = target.has_parent_path() ? (target.parent_path() / name).string() : name;
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) return Errno("create a temporary file next to", path);
  absl::Status status;
  for (absl::string_view bytes : parts) {
    size_t done = 0;
    while (status.ok() && done < bytes.size()) {
      const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        status = Errno("write", tmpl);
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  // mkstemp makes the file 0600; give it the usual permissions.
  if (status.ok() && fchmod(fd, 0644) != 0) status = Errno("set permissions of", tmpl);
  if (status.ok() && fsync(fd) != 0) status = Errno("sync", tmpl);
  if (close(fd) != 0 && status.ok()) status = Errno("close", tmpl);
  if (status.ok() && std::rename(tmpl.c_str(), path.c_str()) != 0) status = Errno("rename a file to", path);
  if (!status.ok()) unlink(tmpl.c_str());
  return status;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever;
  // it is rejected below as not a regular file.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Errno("open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    absl::Status s = Errno("stat", path);
    close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a regular file"));
  }
  if (st.st_size > max_bytes) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' has ", st.st_size, " bytes, more than the limit of ", max_bytes));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = read(fd, data.data() + done, data.size() - done);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      absl::Status s = Errno("read", path);
      close(fd);
      return s;
    }
    if (n == 0) break;  // the file shrank meanwhile
    done += static_cast<size_t>(n);
  }
  close(fd);
  data.resize(done);
  return data;
}

}  // namespace kiln::tools
