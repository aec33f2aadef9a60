#include "import/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "graph/message_text.h"
#include "import/json_util.h"
#include "nlohmann/json.hpp"
#include "proto/safe_path.h"

namespace kiln::import {
namespace {

// Both formats are little-endian; values are read with memcpy.
static_assert(std::endian::native == std::endian::little, "kiln reads checkpoints on little-endian hosts");

using json = nlohmann::json;

// Element sizes of every dtype the safetensors format defines, so that sizes
// and offsets are checked even for tensors kiln cannot use.
int SafetensorsElementSize(absl::string_view dtype) {
  static const std::pair<const char*, int> kSizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1},
      {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
  };
  for (const auto& [name, size] : kSizes) {
    if (dtype == name) return size;
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path,
                                                                       const SafetensorsLimits& limits) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors file \"", path, "\": ", what));
  };
  auto mapped = MappedFile::Open(path, /*no_follow=*/false);
  if (!mapped.ok()) return mapped.status();
  const MappedFile& file = **mapped;
  if (file.size() < 8) return bad(absl::StrCat("has ", file.size(), " bytes, too short for its header length"));
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | static_cast<uint8_t>(file.data()[i]);
  if (header_bytes > limits.max_header_bytes) {
    return bad(absl::StrCat("says its header has ", header_bytes, " bytes, more than the cap of ",
                            limits.max_header_bytes));
  }
  if (header_bytes > file.size() - 8) {
    return bad(absl::StrCat("says its header has ", header_bytes, " bytes but the file has only ",
                            file.size() - 8, " after the length"));
  }
  const absl::string_view text(reinterpret_cast<const char*>(file.data()) + 8, header_bytes);
  auto header = ParseJsonObject(text, limits.max_json_depth);
  if (!header.ok()) return bad(absl::StrCat("header: ", header.status().message()));

  auto out = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  out->path_ = path;
  out->file_ = *mapped;
  const uint64_t data_start = 8 + header_bytes;
  const uint64_t data_bytes = file.size() - data_start;
  for (const auto& [name, value] : header->items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return bad("\"__metadata__\" is not an object");
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) return bad(absl::StrCat("metadata ", QuoteName(key), " is not a string"));
        out->metadata_[key] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor ", QuoteName(name));
    if (name.empty() || name.size() > limits.max_name_bytes) {
      return bad(absl::StrCat(where, ": names must have 1 to ", limits.max_name_bytes, " bytes"));
    }
    if (!value.is_object()) return bad(absl::StrCat(where, " is not an object"));
    SafetensorsTensor t;
    t.name = name;
    auto dtype = value.find("dtype");
    if (dtype == value.end() || !dtype->is_string()) return bad(absl::StrCat(where, " has no \"dtype\" string"));
    t.dtype_name = dtype->get<std::string>();
    t.element_size = SafetensorsElementSize(t.dtype_name);
    if (t.element_size == 0) {
      return bad(absl::StrCat(where, " has dtype ", QuoteName(t.dtype_name),
                              ", which is no safetensors dtype"));
    }
    auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) return bad(absl::StrCat(where, " has no \"shape\" list"));
    if (shape->size() > static_cast<size_t>(limits.max_rank)) {
      return bad(absl::StrCat(where, " has rank ", shape->size(), ", more than ", limits.max_rank));
    }
    uint64_t numel = 1;
    for (const json& d : *shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(limits.max_dim)) {
        return bad(absl::StrCat(where, " has a dim ", EscapeForMessage(d.dump()), " that is not an integer in 0..",
                                limits.max_dim));
      }
      t.dims.push_back(static_cast<int64_t>(d.get<uint64_t>()));
      if (__builtin_mul_overflow(numel, d.get<uint64_t>(), &numel)) {
        return bad(absl::StrCat(where, " has more elements than 64 bits count"));
      }
    }
    auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return bad(absl::StrCat(where, " has no \"data_offsets\" pair of non-negative integers"));
    }
    const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > data_bytes) {
      return bad(absl::StrCat(where, " has data_offsets [", begin, ", ", end, "] outside the ", data_bytes,
                              " data bytes"));
    }
    uint64_t expected = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(t.element_size), &expected) ||
        expected != end - begin) {
      return bad(absl::StrCat(where, " (", t.dtype_name, " ", ShapeString(t.dims), ") has ", end - begin,
                              " data bytes, expected ", numel, " x ", t.element_size));
    }
    t.offset = data_start + begin;
    t.size = end - begin;
    out->tensors_.push_back(std::move(t));
  }
  // No two tensors may share bytes (empty tensors take none).
  std::vector<const SafetensorsTensor*> by_offset;
  for (const SafetensorsTensor& t : out->tensors_) {
    if (t.size > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->offset < by_offset[i - 1]->offset + by_offset[i - 1]->size) {
      return bad(absl::StrCat("tensors ", QuoteName(by_offset[i - 1]->name), " and ",
                              QuoteName(by_offset[i]->name), " overlap"));
    }
  }
  for (size_t i = 0; i < out->tensors_.size(); ++i) out->by_name_.emplace(out->tensors_[i].name, i);
  return out;
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<DType> SafetensorsFile::KilnDType(const SafetensorsTensor& t) const {
  if (t.dtype_name == "F32") return DType::kF32;
  if (t.dtype_name == "F16") return DType::kF16;
  if (t.dtype_name == "BF16") return DType::kBF16;
  return absl::UnimplementedError(absl::StrCat("tensor ", QuoteName(t.name), " of \"", path_, "\" has dtype ",
                                               t.dtype_name, "; kiln imports F32, F16 and BF16 tensors"));
}

std::shared_ptr<const ConstantData> SafetensorsFile::Data(const SafetensorsTensor& t) const {
  auto c = std::make_shared<ConstantData>();
  c->data = t.size > 0 ? file_->data() + t.offset : nullptr;
  c->size = t.size;
  c->keepalive = file_;
  c->origin = absl::StrCat("file:", file_->identity(), ":", t.offset, ":", t.size);
  return c;
}

absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::Open(
    const std::string& folder_or_file, const SafetensorsLimits& limits) {
  namespace fs = std::filesystem;
  auto out = std::unique_ptr<SafetensorsCheckpoint>(new SafetensorsCheckpoint());
  auto add_file = [&](const std::string& path) -> absl::StatusOr<const SafetensorsFile*> {
    auto file = SafetensorsFile::Open(path, limits);
    if (!file.ok()) return file.status();
    out->files_.push_back(std::move(*file));
    return out->files_.back().get();
  };
  std::error_code ec;
  if (!fs::is_directory(folder_or_file, ec)) {
    auto file = add_file(folder_or_file);
    if (!file.ok()) return file.status();
    for (const SafetensorsTensor& t : (*file)->tensors()) out->entries_.emplace(t.name, Entry{*file, &t});
    return out;
  }
  const fs::path folder(folder_or_file);
  const fs::path index_path = folder / "model.safetensors.index.json";
  if (!fs::exists(index_path, ec)) {
    const fs::path single = folder / "model.safetensors";
    if (!fs::exists(single, ec)) {
      return absl::NotFoundError(absl::StrCat("\"", folder_or_file,
                                              "\" has neither model.safetensors nor model.safetensors.index.json"));
    }
    auto file = add_file(single.string());
    if (!file.ok()) return file.status();
    for (const SafetensorsTensor& t : (*file)->tensors()) out->entries_.emplace(t.name, Entry{*file, &t});
    return out;
  }
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("\"", index_path.string(), "\": ", what));
  };
  auto index = ReadJsonFile(index_path.string(), limits.max_header_bytes, limits.max_json_depth);
  if (!index.ok()) return index.status();
  auto map = index->find("weight_map");
  if (map == index->end() || !map->is_object()) return bad("has no \"weight_map\" object");
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [name, shard] : map->items()) {
    if (!shard.is_string()) return bad(absl::StrCat("the file of tensor ", QuoteName(name), " is not a string"));
    const std::string shard_name = shard.get<std::string>();
    auto it = shards.find(shard_name);
    if (it == shards.end()) {
      // Only files inside the folder: the index is as untrusted as the rest.
      auto resolved = ResolveInsideFolder(folder.string(), shard_name);
      if (!resolved.ok()) {
        return bad(absl::StrCat("tensor ", QuoteName(name), "'s file ", QuoteName(shard_name), ": ",
                                resolved.status().message()));
      }
      auto file = add_file(*resolved);
      if (!file.ok()) return file.status();
      it = shards.emplace(shard_name, *file).first;
    }
    const SafetensorsTensor* t = it->second->Find(name);
    if (!t) return bad(absl::StrCat("names ", QuoteName(shard_name), " for tensor ", QuoteName(name),
                                    ", which that file does not have"));
    out->entries_.emplace(name, Entry{it->second, t});
  }
  return out;
}

absl::StatusOr<SafetensorsCheckpoint::Entry> SafetensorsCheckpoint::Find(absl::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("the checkpoint has no tensor ", QuoteName(name)));
  return it->second;
}

}  // namespace kiln::import
