// NumPy .npy files (format versions 1.0 to 3.0 read, 1.0 written), C order.
//
// kiln dtypes map to '<f4' (f32), '<f2' (f16) and '<i4' (i32). Reading also
// accepts '<f8' (rounded to f32) and '<i8' (to i32, when every value fits),
// since NumPy makes those by default; a 0-d array reads as shape [1]. bf16
// and q8_0 have no .npy type: write them as f32 (ToNpyDType says which).
// Files come from anywhere: every header field is checked, sizes are capped,
// and a malformed file is an error, never a crash. Files are opened without
// blocking and must be regular files (a FIFO or a device is an error, not a
// hang), and the header is read and checked against the file's size before
// any data is (NpyFile), so a caller can reject a wrong shape for free.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "scheduler/host_tensor.h"

namespace kiln {

inline constexpr int kNpyMaxRank = 4;                    // kiln's limit
inline constexpr int64_t kNpyMaxBytes = int64_t{1} << 40;

inline constexpr int64_t kNpyMaxHeaderBytes = 1 << 16;  // NumPy's own headers are tiny

// The element types a .npy file may hold, as stored in the file.
enum class NpyElement : uint8_t { kF32, kF16, kF64, kI32, kI64, kU8 };
absl::string_view NpyElementName(NpyElement e);  // "float32", ...
int NpyElementSize(NpyElement e);

struct NpyHeader {
  std::string descr;          // as written, e.g. "<f4"
  NpyElement element = NpyElement::kF32;
  std::vector<int64_t> dims;  // a 0-d array as [1]
  int64_t numel = 0;
  int64_t data_offset = 0;    // where the data starts in the file
  int64_t data_bytes = 0;     // numel * element size
};

// Parses the header at the start of `bytes` (the whole file, or at least its
// header). Checks the fields, not the data's length.
absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view bytes);

// An open .npy file whose header has been read and checked, the file's size
// included; the data is read on request, straight into the caller's memory.
class NpyFile {
 public:
  static absl::StatusOr<NpyFile> Open(const std::string& path);
  NpyFile(NpyFile&& other) noexcept;
  NpyFile& operator=(NpyFile&&) = delete;
  ~NpyFile();

  const NpyHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  // Reads elements [first, first + count) into `dst` (count * element size bytes).
  absl::Status ReadElements(int64_t first, int64_t count, void* dst) const;

 private:
  NpyFile(std::string path, int fd, NpyHeader header) : path_(std::move(path)), fd_(fd), header_(std::move(header)) {}
  std::string path_;
  int fd_ = -1;
  NpyHeader header_;
};

// A whole file as a tensor: f32, f16 and i32 as they are, f64 and i64 narrowed.
absl::StatusOr<HostTensor> ParseNpy(absl::string_view bytes);
absl::StatusOr<HostTensor> ReadNpy(const std::string& path);

// The dtype a tensor is written as: itself for f32/f16/i32, f32 otherwise.
DType ToNpyDType(DType t);
// f32, f16 and i32 only (convert others first, see ToNpyDType).
absl::StatusOr<std::string> SerializeNpy(const HostTensor& t);
// Serializes and writes atomically (temporary file, then rename).
absl::Status WriteNpy(const std::string& path, const HostTensor& t);

}  // namespace kiln
