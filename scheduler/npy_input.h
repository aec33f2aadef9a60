// A .npy file read as the value of a given tensor (a graph input or state):
// the file's shape must be the tensor's, and its values convert where nothing
// but rounding is lost: floats (f64, f32, f16) to any float dtype, int64 to
// i32 (every value must fit), and f32/f16/f64 to q8_0 (quantized per block
// of 32). A q8_0 tensor also takes its packed blocks as they are: a uint8
// array whose innermost dim is the row's bytes (34 per block of 32). The
// header is checked before any data is read, and the data is read straight
// into the tensor, converted in chunks. `kiln run` and the public API
// (api/) bind .npy inputs through these.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/tensor.h"
#include "scheduler/host_tensor.h"
#include "scheduler/npy.h"

namespace kiln {

// How a file's elements become the tensor's.
enum class NpyConversion { kAsIs, kFloat, kInt };

// Checks an open file's header against tensor `t`: the conversion that reads
// it, or an error naming the tensor, the file and what was expected.
absl::StatusOr<NpyConversion> CheckNpyFor(const TensorInfo& t, const NpyFile& file);

// Reads the file into `out` (t's dtype and shape), converting as `conv` says.
absl::Status ReadNpyInto(const TensorInfo& t, const NpyFile& file, NpyConversion conv, HostTensor& out);

// Opens, checks and reads `path` as tensor `t`'s value; running out of host
// memory is ResourceExhausted naming the tensor and its size.
absl::StatusOr<HostTensor> ReadNpyFor(const TensorInfo& t, const std::string& path);

// Zeros of t's dtype and shape; running out of host memory names the tensor.
absl::StatusOr<HostTensor> AllocateFor(const TensorInfo& t);

// Symmetric int8 quantization of 32 floats into one q8_0 block (an f16
// scale, then the values).
void QuantizeQ8Block(const float* values, std::byte* block);

}  // namespace kiln
