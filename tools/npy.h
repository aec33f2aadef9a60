// NumPy .npy files (format versions 1.0 to 3.0 read, 1.0 written), C order.
//
// kiln dtypes map to '<f4' (f32), '<f2' (f16) and '<i4' (i32). Reading also
// accepts '<f8' (rounded to f32) and '<i8' (to i32, when every value fits),
// since NumPy makes those by default; a 0-d array reads as shape [1]. bf16
// and q8_0 have no .npy type: write them as f32 (ToNpyDType says which).
// Files come from anywhere: every header field is checked, sizes are capped,
// and a malformed file is an error, never a crash.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "scheduler/host_tensor.h"

namespace kiln::tools {

inline constexpr int kNpyMaxRank = 4;                    // kiln's limit
inline constexpr int64_t kNpyMaxBytes = int64_t{1} << 40;

absl::StatusOr<HostTensor> ParseNpy(absl::string_view bytes);
absl::StatusOr<HostTensor> ReadNpy(const std::string& path);

// The dtype a tensor is written as: itself for f32/f16/i32, f32 otherwise.
DType ToNpyDType(DType t);
// f32, f16 and i32 only (convert others first, see ToNpyDType).
absl::StatusOr<std::string> SerializeNpy(const HostTensor& t);
// Serializes and writes atomically (temporary file, then rename).
absl::Status WriteNpy(const std::string& path, const HostTensor& t);

}  // namespace kiln::tools
