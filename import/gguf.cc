#include "import/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "graph/message_text.h"

namespace kiln::import {
namespace {

// Both formats are little-endian; values are read with memcpy.
static_assert(std::endian::native == std::endian::little, "kiln reads checkpoints on little-endian hosts");

// GGUF metadata value types.
enum : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// The ggml tensor types kiln reads.
enum : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlBF16 = 30 };

int ScalarBytes(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

// Reads little-endian values from the mapping; every read is bounds-checked
// and the first failure sticks (later reads return zeros).
class Cursor {
 public:
  Cursor(const std::byte* data, uint64_t size) : data_(data), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  bool ok() const { return ok_; }

  template <typename T>
  T Read() {
    T v{};
    if (!ok_ || left() < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  bool Skip(uint64_t n) {
    if (!ok_ || left() < n) return ok_ = false;
    pos_ += n;
    return true;
  }
  // A u64-length string of at most `max` bytes.
  absl::StatusOr<std::string> String(uint64_t max, absl::string_view what) {
    const uint64_t n = Read<uint64_t>();
    if (!ok_) return Truncated(what);
    if (n > max) return absl::InvalidArgumentError(absl::StrCat(what, " has ", n, " bytes, more than the cap of ", max));
    if (n > left()) return Truncated(what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  absl::Status Truncated(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("the file ends inside ", what, " (at byte ", pos_, ")"));
  }

 private:
  const std::byte* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  bool ok_ = true;
};

absl::Status ReadValue(Cursor& c, uint32_t type, const GgufLimits& limits, const std::string& key, GgufValue& v) {
  const std::string what = absl::StrCat("metadata ", QuoteName(key));
  v.type = type;
  switch (type) {
    case kU8: v.kind = GgufValue::Kind::kUint; v.u = c.Read<uint8_t>(); break;
    case kU16: v.kind = GgufValue::Kind::kUint; v.u = c.Read<uint16_t>(); break;
    case kU32: v.kind = GgufValue::Kind::kUint; v.u = c.Read<uint32_t>(); break;
    case kU64: v.kind = GgufValue::Kind::kUint; v.u = c.Read<uint64_t>(); break;
    case kI8: v.kind = GgufValue::Kind::kInt; v.i = c.Read<int8_t>(); break;
    case kI16: v.kind = GgufValue::Kind::kInt; v.i = c.Read<int16_t>(); break;
    case kI32: v.kind = GgufValue::Kind::kInt; v.i = c.Read<int32_t>(); break;
    case kI64: v.kind = GgufValue::Kind::kInt; v.i = c.Read<int64_t>(); break;
    case kF32: v.kind = GgufValue::Kind::kFloat; v.f = c.Read<float>(); break;
    case kF64: v.kind = GgufValue::Kind::kFloat; v.f = c.Read<double>(); break;
    case kBool: {
      const uint8_t b = c.Read<uint8_t>();
      if (c.ok() && b > 1) return absl::InvalidArgumentError(absl::StrCat(what, " is a bool of value ", b));
      v.kind = GgufValue::Kind::kBool;
      v.b = b != 0;
      break;
    }
    case kString: {
      auto s = c.String(limits.max_string_bytes, what);
      if (!s.ok()) return s.status();
      v.kind = GgufValue::Kind::kString;
      v.s = std::move(*s);
      break;
    }
    case kArray: {
      v.kind = GgufValue::Kind::kArray;
      v.array_type = c.Read<uint32_t>();
      v.array_count = c.Read<uint64_t>();
      if (!c.ok()) return c.Truncated(what);
      if (v.array_count > limits.max_array_count) {
        return absl::InvalidArgumentError(absl::StrCat(what, " is an array of ", v.array_count,
                                                       " values, more than the cap of ", limits.max_array_count));
      }
      if (v.array_type == kString) {
        for (uint64_t i = 0; i < v.array_count; ++i) {
          auto s = c.String(limits.max_string_bytes, what);
          if (!s.ok()) return s.status();
        }
      } else if (const int bytes = ScalarBytes(v.array_type); bytes > 0) {
        // count <= 2^26 and bytes <= 8: no overflow.
        if (!c.Skip(v.array_count * bytes)) return c.Truncated(what);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(what, " is an array of value type ", v.array_type,
                                                       " (nested arrays and unknown types are refused)"));
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(what, " has unknown value type ", type));
  }
  if (!c.ok()) return c.Truncated(what);
  return absl::OkStatus();
}

}  // namespace

std::string GgmlTypeName(uint32_t type) {
  static const char* const kNames[] = {
      "F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",   "Q5_0",  "Q5_1",  "Q8_0",   "Q8_1",
      "Q2_K",    "Q3_K",   "Q4_K",    "Q5_K",  "Q6_K",   "Q8_K",   "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
      "IQ4_NL",  "IQ3_S",  "IQ2_S",   "IQ4_XS", "I8",    "I16",    "I32",   "I64",   "F64",    "IQ1_M",
      "BF16",    "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8",
      "IQ4_NL_8_8", "MXFP4",
  };
  if (type < std::size(kNames)) return kNames[type];
  return absl::StrCat("type ", type);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path, const GgufLimits& limits) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF file \"", path, "\": ", what));
  };
  auto wrap = [&](const absl::Status& st) { return bad(st.message()); };
  auto mapped = MappedFile::Open(path, /*no_follow=*/false);
  if (!mapped.ok()) return mapped.status();
  const MappedFile& file = **mapped;
  Cursor c(file.data(), file.size());
  const uint32_t magic = c.Read<uint32_t>();
  if (!c.ok() || std::memcmp(file.data(), "GGUF", 4) != 0) return bad("does not start with \"GGUF\"");
  (void)magic;
  auto out = std::unique_ptr<GgufFile>(new GgufFile());
  out->path_ = path;
  out->file_ = *mapped;
  out->version_ = c.Read<uint32_t>();
  if (!c.ok()) return wrap(c.Truncated("the header"));
  if (out->version_ != 2 && out->version_ != 3) {
    return bad(absl::StrCat("has version ", out->version_, "; kiln reads GGUF v2 and v3 (little-endian)"));
  }
  const uint64_t tensor_count = c.Read<uint64_t>();
  const uint64_t kv_count = c.Read<uint64_t>();
  if (!c.ok()) return wrap(c.Truncated("the header"));
  if (tensor_count > limits.max_tensors) {
    return bad(absl::StrCat("says it has ", tensor_count, " tensors, more than the cap of ", limits.max_tensors));
  }
  if (kv_count > limits.max_kv) {
    return bad(absl::StrCat("says it has ", kv_count, " metadata entries, more than the cap of ", limits.max_kv));
  }
  for (uint64_t k = 0; k < kv_count; ++k) {
    auto key = c.String(limits.max_string_bytes, absl::StrCat("metadata key #", k));
    if (!key.ok()) return wrap(key.status());
    const uint32_t type = c.Read<uint32_t>();
    if (!c.ok()) return wrap(c.Truncated(absl::StrCat("metadata ", QuoteName(*key))));
    GgufValue value;
    if (auto st = ReadValue(c, type, limits, *key, value); !st.ok()) return wrap(st);
    if (!out->metadata_.emplace(*key, std::move(value)).second) {
      return bad(absl::StrCat("has metadata ", QuoteName(*key), " twice"));
    }
  }
  auto alignment = out->GetInt("general.alignment");
  if (!alignment.ok()) return wrap(alignment.status());
  if (*alignment) {
    const int64_t a = **alignment;
    if (a < 1 || a > 65536 || (a & (a - 1)) != 0) {
      return bad(absl::StrCat("general.alignment is ", a, ", not a power of two in 1..65536"));
    }
    out->alignment_ = static_cast<uint64_t>(a);
  }

  for (uint64_t k = 0; k < tensor_count; ++k) {
    GgufTensor t;
    auto name = c.String(limits.max_string_bytes, absl::StrCat("the name of tensor #", k));
    if (!name.ok()) return wrap(name.status());
    t.name = std::move(*name);
    const std::string where = absl::StrCat("tensor ", QuoteName(t.name));
    if (t.name.empty()) return bad(absl::StrCat("tensor #", k, " has an empty name"));
    const uint32_t n_dims = c.Read<uint32_t>();
    if (!c.ok()) return wrap(c.Truncated(where));
    if (n_dims < 1 || n_dims > static_cast<uint32_t>(limits.max_dims)) {
      return bad(absl::StrCat(where, " has ", n_dims, " dims; GGUF tensors have 1 to ", limits.max_dims));
    }
    uint64_t numel = 1;
    std::vector<int64_t> ne;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = c.Read<uint64_t>();
      if (!c.ok()) return wrap(c.Truncated(where));
      if (n > static_cast<uint64_t>(limits.max_dim)) {
        return bad(absl::StrCat(where, " has a dim of ", n, ", more than ", limits.max_dim));
      }
      ne.push_back(static_cast<int64_t>(n));
      if (__builtin_mul_overflow(numel, n, &numel)) return bad(absl::StrCat(where, " has too many elements"));
    }
    if (numel > (uint64_t{1} << 46)) return bad(absl::StrCat(where, " has too many elements"));  // bytes fit
    t.dims.assign(ne.rbegin(), ne.rend());  // kiln lists dims outermost first
    t.ggml_type = c.Read<uint32_t>();
    const uint64_t offset = c.Read<uint64_t>();
    if (!c.ok()) return wrap(c.Truncated(where));
    uint64_t bytes = 0;
    switch (t.ggml_type) {
      case kGgmlF32: t.dtype = DType::kF32; bytes = numel * 4; break;
      case kGgmlF16: t.dtype = DType::kF16; bytes = numel * 2; break;
      case kGgmlBF16: t.dtype = DType::kBF16; bytes = numel * 2; break;
      case kGgmlQ8_0:
        t.dtype = DType::kQ8_0;
        if (ne[0] % kQ8BlockSize != 0) {
          return bad(absl::StrCat(where, " is Q8_0 with an innermost dim of ", ne[0], ", not a multiple of 32"));
        }
        bytes = numel / kQ8BlockSize * kQ8BlockBytes;
        break;
      default:
        return absl::UnimplementedError(absl::StrCat(
            "GGUF file \"", path, "\": ", where, " has type ", GgmlTypeName(t.ggml_type),
            "; kiln imports F32, F16, BF16 and Q8_0 tensors (requantize with llama-quantize, e.g. to Q8_0)"));
    }
    if (offset % out->alignment_ != 0) {
      return bad(absl::StrCat(where, " is at data offset ", offset, ", not a multiple of the alignment ",
                              out->alignment_));
    }
    t.offset = offset;  // made absolute below, once the data's start is known
    t.size = bytes;
    if (out->by_name_.count(t.name)) return bad(absl::StrCat(where, " appears twice"));
    out->by_name_.emplace(t.name, out->tensors_.size());
    out->tensors_.push_back(std::move(t));
  }
  const uint64_t data_start = (c.pos() + out->alignment_ - 1) / out->alignment_ * out->alignment_;
  if (data_start > file.size() && !out->tensors_.empty()) return bad("the file ends before its tensor data");
  const uint64_t data_bytes = data_start > file.size() ? 0 : file.size() - data_start;
  for (GgufTensor& t : out->tensors_) {
    if (t.offset > data_bytes || t.size > data_bytes - t.offset) {
      return bad(absl::StrCat("tensor ", QuoteName(t.name), " (", t.size, " bytes at data offset ", t.offset,
                              ") lies beyond the end of the file's ", data_bytes, " data bytes"));
    }
    t.offset += data_start;
  }
  std::vector<const GgufTensor*> by_offset;
  for (const GgufTensor& t : out->tensors_) {
    if (t.size > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->offset < by_offset[i - 1]->offset + by_offset[i - 1]->size) {
      return bad(absl::StrCat("tensors ", QuoteName(by_offset[i - 1]->name), " and ", QuoteName(by_offset[i]->name),
                              " overlap"));
    }
  }
  return out;
}

const GgufTensor* GgufFile::Find(absl::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<std::optional<std::string>> GgufFile::GetString(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) return std::nullopt;
  if (it->second.kind != GgufValue::Kind::kString) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF file \"", path_, "\": metadata ", QuoteName(key),
                                                   " is not a string"));
  }
  return it->second.s;
}

absl::StatusOr<std::optional<int64_t>> GgufFile::GetInt(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) return std::nullopt;
  const GgufValue& v = it->second;
  if (v.kind == GgufValue::Kind::kInt) return v.i;
  if (v.kind == GgufValue::Kind::kUint && v.u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(v.u);
  return absl::InvalidArgumentError(absl::StrCat("GGUF file \"", path_, "\": metadata ", QuoteName(key),
                                                 " is not an integer", v.kind == GgufValue::Kind::kArray
                                                                           ? " (per-layer arrays are not supported)"
                                                                           : ""));
}

absl::StatusOr<std::optional<double>> GgufFile::GetFloat(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) return std::nullopt;
  const GgufValue& v = it->second;
  if (v.kind == GgufValue::Kind::kFloat) return v.f;
  if (v.kind == GgufValue::Kind::kInt) return static_cast<double>(v.i);
  if (v.kind == GgufValue::Kind::kUint) return static_cast<double>(v.u);
  return absl::InvalidArgumentError(absl::StrCat("GGUF file \"", path_, "\": metadata ", QuoteName(key),
                                                 " is not a number"));
}

std::shared_ptr<const ConstantData> GgufFile::Data(const GgufTensor& t) const {
  auto c = std::make_shared<ConstantData>();
  c->data = t.size > 0 ? file_->data() + t.offset : nullptr;
  c->size = t.size;
  c->keepalive = file_;
  c->origin = absl::StrCat("file:", file_->identity(), ":", t.offset, ":", t.size);
  return c;
}

}  // namespace kiln::import
