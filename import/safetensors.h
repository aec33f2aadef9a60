// Reading safetensors checkpoints (one file, or shards listed by
// model.safetensors.index.json), treated as hostile input.
//
// A file is: u64 little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}),
// then the data, whose offsets are relative to its start. Opening maps the
// file and checks everything the header says: the length cap, the JSON
// (nesting depth, duplicate names), every dtype, shape and offset range (in
// bounds, size = numel * element size, no overlaps, no integer overflow).
// Tensors come back as ConstantData pointing into the mapping: no copy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/dtype.h"
#include "graph/tensor.h"
#include "proto/mapped_file.h"

namespace kiln::import {

struct SafetensorsLimits {
  uint64_t max_header_bytes = 100ull << 20;  // the JSON header
  int max_rank = 8;
  int64_t max_dim = int64_t{1} << 40;
  size_t max_name_bytes = 1024;
  int max_json_depth = 8;  // a valid header nests 3 deep
};

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;  // as the header says: "F32", "BF16", "I64", ...
  int element_size = 0;    // bytes, from dtype_name
  std::vector<int64_t> dims;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t size = 0;    // bytes
};

// One .safetensors file, mapped.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path,
                                                               const SafetensorsLimits& limits = {});

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsTensor* Find(absl::string_view name) const;

  // The tensor's dtype as kiln's (F32, F16, BF16; any other is an error
  // naming the tensor and its dtype) and its bytes, pointing into the
  // mapping (t.offset says where they lie in path()).
  absl::StatusOr<DType> KilnDType(const SafetensorsTensor& t) const;
  std::shared_ptr<const ConstantData> Data(const SafetensorsTensor& t) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: a folder's model.safetensors, or the shards its
// model.safetensors.index.json lists (file names inside the folder only,
// each tensor in exactly the file the index names), or one file.
class SafetensorsCheckpoint {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> Open(
      const std::string& folder_or_file, const SafetensorsLimits& limits = {});

  struct Entry {
    const SafetensorsFile* file;
    const SafetensorsTensor* tensor;
  };
  // NotFound when no file has that tensor.
  absl::StatusOr<Entry> Find(absl::string_view name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  size_t tensor_count() const { return entries_.size(); }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace kiln::import
