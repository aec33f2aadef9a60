// Reading GGUF files (llama.cpp's checkpoint format), v2 and v3,
// little-endian, treated as hostile input.
//
// Layout: magic "GGUF", u32 version, u64 tensor count, u64 key/value count,
// the key/values (u64-length strings, typed scalars and arrays), the tensor
// infos (name, dims innermost first, ggml type, offset into the data), then
// the data at general.alignment (default 32). Every count, length, string
// and array is capped and checked against the file's remaining bytes; every
// tensor's range is in bounds, aligned and overlaps no other. Tensor types
// F32, F16, BF16 and Q8_0 (whose 34-byte blocks are kiln's q8_0) are read;
// any other type is an error naming the tensor and its type.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/dtype.h"
#include "graph/tensor.h"
#include "proto/mapped_file.h"

namespace kiln::import {

struct GgufLimits {
  uint64_t max_tensors = 1 << 20;
  uint64_t max_kv = 1 << 20;
  uint64_t max_string_bytes = 1 << 20;     // one string (key, name or value)
  uint64_t max_array_count = 1ull << 26;   // a tokenizer's vocabulary fits
  int max_dims = 4;                        // GGML_MAX_DIMS
  int64_t max_dim = int64_t{1} << 40;
};

// A metadata value. Scalars are kept; arrays are skipped over and only
// their element type and count are kept (the importer needs none of them).
struct GgufValue {
  enum class Kind { kUint, kInt, kFloat, kBool, kString, kArray };
  Kind kind = Kind::kUint;
  uint32_t type = 0;  // the GGUF value type (0..12)
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  uint32_t array_type = 0;
  uint64_t array_count = 0;
};

struct GgufTensor {
  std::string name;
  uint32_t ggml_type = 0;
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;  // outermost first (GGUF lists them innermost first)
  uint64_t offset = 0;        // absolute byte offset in the file
  uint64_t size = 0;
};

class GgufFile {
 public:
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path, const GgufLimits& limits = {});

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* Find(absl::string_view name) const;

  // Typed metadata look-ups: nullopt when the key is absent; an error when
  // it holds another type (the message names the key).
  absl::StatusOr<std::optional<std::string>> GetString(const std::string& key) const;
  absl::StatusOr<std::optional<int64_t>> GetInt(const std::string& key) const;  // any integer type
  absl::StatusOr<std::optional<double>> GetFloat(const std::string& key) const;  // f32/f64 or integer

  // The tensor's bytes, pointing into the mapping.
  std::shared_ptr<const ConstantData> Data(const GgufTensor& t) const;

 private:
  GgufFile() = default;
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

// "Q4_K" for a ggml type number, "type 77" for one this table lacks.
std::string GgmlTypeName(uint32_t type);

}  // namespace kiln::import
