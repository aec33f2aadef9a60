#include "tools/npy.h"

#include <bit>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/validate.h"
#include "base/atomic_file.h"
#include "base/read_file.h"

namespace kiln::tools {
namespace {

static_assert(std::endian::native == std::endian::little, "npy IO assumes a little-endian host");

constexpr absl::string_view kMagic = "\x93NUMPY";
constexpr size_t kMaxHeaderBytes = 1 << 16;  // NumPy's own headers are tiny

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("not a valid .npy file: ", why));
}

// The header is a Python dict literal:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// This reads exactly that grammar: string keys; values that are strings,
// True/False, or tuples of non-negative integers.
class HeaderParser {
 public:
  explicit HeaderParser(absl::string_view s) : s_(s) {}

  struct Fields {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
  };

  absl::StatusOr<Fields> Parse() {
    Fields f;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    if (!Eat('{')) return Malformed("the header does not start with '{'");
    while (true) {
      if (Eat('}')) break;
      auto key = String();
      if (!key.ok()) return key.status();
      if (!Eat(':')) return Malformed(absl::StrCat("no ':' after key '", *key, "'"));
      if (*key == "descr") {
        if (seen_descr) return Malformed("'descr' appears twice");
        auto v = String();
        if (!v.ok()) return v.status();
        f.descr = *v;
        seen_descr = true;
      } else if (*key == "fortran_order") {
        if (seen_order) return Malformed("'fortran_order' appears twice");
        if (EatWord("True")) f.fortran_order = true;
        else if (EatWord("False")) f.fortran_order = false;
        else return Malformed("'fortran_order' is not True or False");
        seen_order = true;
      } else if (*key == "shape") {
        if (seen_shape) return Malformed("'shape' appears twice");
        auto v = Tuple();
        if (!v.ok()) return v.status();
        f.shape = *v;
        seen_shape = true;
      } else {
        return Malformed(absl::StrCat("unexpected header key '", *key, "'"));
      }
      if (Eat(',')) continue;
      if (Eat('}')) break;
      return Malformed("expected ',' or '}' in the header");
    }
    SkipSpace();
    if (pos_ != s_.size()) return Malformed("unexpected text after the header dict");
    if (!seen_descr || !seen_order || !seen_shape) {
      return Malformed("the header lacks 'descr', 'fortran_order' or 'shape'");
    }
    return f;
  }

 private:
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool EatWord(absl::string_view w) {
    SkipSpace();
    if (s_.substr(pos_, w.size()) == w) {
      pos_ += w.size();
      return true;
    }
    return false;
  }
  absl::StatusOr<std::string> String() {
    SkipSpace();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) {
      return Malformed("expected a quoted string in the header");
    }
    const char quote = s_[pos_++];
    const size_t end = s_.find(quote, pos_);
    if (end == absl::string_view::npos || end - pos_ > 64) return Malformed("bad string in the header");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  absl::StatusOr<std::vector<int64_t>> Tuple() {
    if (!Eat('(')) return Malformed("'shape' is not a tuple");
    std::vector<int64_t> dims;
    while (true) {
      if (Eat(')')) break;
      SkipSpace();
      int64_t v = 0;
      size_t digits = 0;
      while (pos_ < s_.size() && absl::ascii_isdigit(s_[pos_])) {
        if (++digits > 15) return Malformed("a dimension in 'shape' is too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      if (digits == 0) return Malformed("'shape' holds something other than non-negative integers");
      if (pos_ < s_.size() && (s_[pos_] == 'L')) ++pos_;  // Python 2 longs
      if (dims.size() >= 32) return Malformed("'shape' has too many dimensions");
      dims.push_back(v);
      if (Eat(',')) continue;
      if (Eat(')')) break;
      return Malformed("expected ',' or ')' in 'shape'");
    }
    return dims;
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

struct NpyType {
  DType dtype;   // what kiln keeps
  int itemsize;  // bytes per element in the file
  bool wide;     // f8 / i8, narrowed on reading
};

absl::StatusOr<NpyType> ParseDescr(absl::string_view descr) {
  if (descr.size() < 3) return Malformed(absl::StrCat("unsupported dtype '", descr, "'"));
  const char order = descr[0];
  const absl::string_view kind = descr.substr(1);
  if (order == '>') {
    return absl::InvalidArgumentError(
        absl::StrCat("big-endian arrays ('", descr, "') are not supported; save with dtype '<", kind, "'"));
  }
  if (order == '<' || order == '=' || order == '|') {
    if (kind == "f4") return NpyType{DType::kF32, 4, false};
    if (kind == "f2") return NpyType{DType::kF16, 2, false};
    if (kind == "i4") return NpyType{DType::kI32, 4, false};
    if (kind == "f8") return NpyType{DType::kF32, 8, true};
    if (kind == "i8") return NpyType{DType::kI32, 8, true};
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported dtype '", descr, "' (kiln reads float32, float16, int32, float64 and int64)"));
}

uint16_t Le16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}
uint32_t Le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

absl::string_view NpyDescr(DType t) {
  switch (t) {
    case DType::kF32: return "<f4";
    case DType::kF16: return "<f2";
    case DType::kI32: return "<i4";
    default: return "";
  }
}

}  // namespace

absl::StatusOr<HostTensor> ParseNpy(absl::string_view bytes) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) return Malformed("missing the NumPy magic bytes");
  const int major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = Le16(bytes.data() + 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Malformed("truncated header");
    header_len = Le32(bytes.data() + 8);
    header_start = 12;
  } else {
    return Malformed(absl::StrCat("unsupported format version ", major));
  }
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - header_start) {
    return Malformed("the header length runs past the end of the file");
  }
  auto fields = HeaderParser(bytes.substr(header_start, header_len)).Parse();
  if (!fields.ok()) return fields.status();
  auto type = ParseDescr(fields->descr);
  if (!type.ok()) return type.status();
  if (fields->fortran_order) {
    return absl::InvalidArgumentError("Fortran-order arrays are not supported; save a C-order array");
  }
  std::vector<int64_t> dims = fields->shape;
  if (dims.empty()) dims = {1};  // a 0-d array holds one value
  if (dims.size() > kNpyMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("the array has rank ", dims.size(), "; kiln tensors have at most ", kNpyMaxRank));
  }
  int64_t numel = 1;
  for (int64_t d : dims) {
    if (d > kMaxDim || __builtin_mul_overflow(numel, d, &numel) || numel > kNpyMaxBytes / 8) {
      return Malformed(absl::StrCat("shape ", ShapeString(dims), " is too large"));
    }
  }
  const absl::string_view payload = bytes.substr(header_start + header_len);
  if (static_cast<int64_t>(payload.size()) != numel * type->itemsize) {
    return Malformed(absl::StrCat("shape ", ShapeString(dims), " of '", fields->descr, "' needs ",
                                  numel * type->itemsize, " data bytes, the file has ", payload.size()));
  }
  HostTensor t = HostTensor::Zeros(type->dtype, dims);
  if (!type->wide) {
    if (!payload.empty()) std::memcpy(t.data.data(), payload.data(), payload.size());
    return t;
  }
  for (int64_t i = 0; i < numel; ++i) {
    if (type->dtype == DType::kF32) {
      double v;
      std::memcpy(&v, payload.data() + 8 * i, 8);
      const float f = static_cast<float>(v);
      std::memcpy(t.data.data() + 4 * i, &f, 4);
    } else {
      int64_t v;
      std::memcpy(&v, payload.data() + 8 * i, 8);
      if (v < INT32_MIN || v > INT32_MAX) {
        return absl::InvalidArgumentError(
            absl::StrCat("int64 value ", v, " at flat index ", i, " does not fit in int32"));
      }
      const int32_t n = static_cast<int32_t>(v);
      std::memcpy(t.data.data() + 4 * i, &n, 4);
    }
  }
  return t;
}

absl::StatusOr<HostTensor> ReadNpy(const std::string& path) {
  auto bytes = ReadFile(path, kNpyMaxBytes);
  if (!bytes.ok()) return bytes.status();
  auto t = ParseNpy(*bytes);
  if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat(path, ": ", t.status().message()));
  return t;
}

DType ToNpyDType(DType t) { return NpyDescr(t).empty() ? DType::kF32 : t; }

absl::StatusOr<std::string> SerializeNpy(const HostTensor& t) {
  const absl::string_view descr = NpyDescr(t.dtype);
  if (descr.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(DTypeName(t.dtype), " has no .npy type; convert to f32 first"));
  }
  if (static_cast<int64_t>(t.data.size()) != ContiguousBytes(t.dtype, t.dims) || t.dims.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("a ", DTypeName(t.dtype), " ", ShapeString(t.dims),
                                                   " tensor with ", t.data.size(), " bytes"));
  }
  std::string shape = absl::StrJoin(t.dims, ", ");
  if (t.dims.size() == 1) shape += ",";
  std::string header = absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", shape, "), }");
  // Pad with spaces so the data starts 64-byte aligned; end with a newline.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out;
  out.reserve(10 + header.size() + t.data.size());
  out.append(kMagic.data(), kMagic.size());
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out.append(header);
  out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  return out;
}

absl::Status WriteNpy(const std::string& path, const HostTensor& t) {
  auto bytes = SerializeNpy(t);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

}  // namespace kiln::tools
