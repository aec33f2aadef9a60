#include "scheduler/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/validate.h"
#include "base/atomic_file.h"
#include "base/read_file.h"

namespace kiln {
namespace {

static_assert(std::endian::native == std::endian::little, "npy IO assumes a little-endian host");

constexpr absl::string_view kMagic = "\x93NUMPY";

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
      if (!Eat(':')) return Malformed(absl::StrCat("no ':' after key '", absl::CHexEscape(*key), "'"));
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
        return Malformed(absl::StrCat("unexpected header key '", absl::CHexEscape(*key), "'"));
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

absl::StatusOr<NpyElement> ParseDescr(absl::string_view descr) {
  if (descr.size() < 3) return Malformed(absl::StrCat("unsupported dtype '", absl::CHexEscape(descr), "'"));
  const char order = descr[0];
  const absl::string_view kind = descr.substr(1);
  if (order == '>' && kind != "u1") {
    return absl::InvalidArgumentError(absl::StrCat("big-endian arrays ('", absl::CHexEscape(descr),
                                                   "') are not supported; save with dtype '<",
                                                   absl::CHexEscape(kind), "'"));
  }
  if (order == '<' || order == '=' || order == '|' || order == '>') {
    if (kind == "f4") return NpyElement::kF32;
    if (kind == "f2") return NpyElement::kF16;
    if (kind == "i4") return NpyElement::kI32;
    if (kind == "f8") return NpyElement::kF64;
    if (kind == "i8") return NpyElement::kI64;
    if (kind == "u1") return NpyElement::kU8;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported dtype '", absl::CHexEscape(descr),
                                                 "' (kiln reads float32, float16, float64, int32, int64 and "
                                                 "uint8, the bytes of q8_0 blocks)"));
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

absl::string_view NpyElementName(NpyElement e) {
  switch (e) {
    case NpyElement::kF32: return "float32";
    case NpyElement::kF16: return "float16";
    case NpyElement::kF64: return "float64";
    case NpyElement::kI32: return "int32";
    case NpyElement::kI64: return "int64";
    case NpyElement::kU8: return "uint8";
  }
  return "?";
}

int NpyElementSize(NpyElement e) {
  switch (e) {
    case NpyElement::kF32: case NpyElement::kI32: return 4;
    case NpyElement::kF16: return 2;
    case NpyElement::kF64: case NpyElement::kI64: return 8;
    case NpyElement::kU8: return 1;
  }
  return 1;
}

absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view bytes) {
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
  if (header_len > static_cast<size_t>(kNpyMaxHeaderBytes)) {
    return Malformed(absl::StrCat("the header length is ", header_len, " bytes; kiln reads headers of up to ",
                                  kNpyMaxHeaderBytes, " bytes (NumPy writes a few hundred)"));
  }
  if (header_len > bytes.size() - header_start) {
    return Malformed(absl::StrCat("the header length (", header_len, " bytes) runs past the end of the file"));
  }
  auto fields = HeaderParser(bytes.substr(header_start, header_len)).Parse();
  if (!fields.ok()) return fields.status();
  auto element = ParseDescr(fields->descr);
  if (!element.ok()) return element.status();
  if (fields->fortran_order) {
    return absl::InvalidArgumentError("Fortran-order arrays are not supported; save a C-order array");
  }
  NpyHeader h;
  h.descr = fields->descr;
  h.element = *element;
  h.dims = fields->shape;
  if (h.dims.empty()) h.dims = {1};  // a 0-d array holds one value
  if (h.dims.size() > kNpyMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("the array has rank ", h.dims.size(), "; kiln tensors have at most ", kNpyMaxRank));
  }
  h.numel = 1;
  for (int64_t d : h.dims) {
    if (d > kMaxDim || __builtin_mul_overflow(h.numel, d, &h.numel) || h.numel > kNpyMaxBytes / 8) {
      return Malformed(absl::StrCat("shape ", ShapeString(h.dims), " is too large"));
    }
  }
  h.data_offset = static_cast<int64_t>(header_start + header_len);
  h.data_bytes = h.numel * NpyElementSize(h.element);
  return h;
}

namespace {

absl::Status CheckDataBytes(const NpyHeader& h, int64_t have) {
  if (have != h.data_bytes) {
    return Malformed(absl::StrCat("shape ", ShapeString(h.dims), " of '", absl::CHexEscape(h.descr), "' needs ",
                                  h.data_bytes, " data bytes, the file has ", have));
  }
  return absl::OkStatus();
}

// The tensor of a file's elements: as they are, or f64/i64 narrowed.
absl::StatusOr<HostTensor> ToTensor(const NpyHeader& h, const std::function<absl::Status(int64_t, int64_t, void*)>& read) {
  DType dtype;
  switch (h.element) {
    case NpyElement::kF32: case NpyElement::kF64: dtype = DType::kF32; break;
    case NpyElement::kF16: dtype = DType::kF16; break;
    case NpyElement::kI32: case NpyElement::kI64: dtype = DType::kI32; break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("'", h.descr, "' arrays are read only as q8_0 blocks"));
  }
  HostTensor t = HostTensor::Zeros(dtype, h.dims);
  if (h.element != NpyElement::kF64 && h.element != NpyElement::kI64) {
    if (auto st = read(0, h.numel, t.data.data()); !st.ok()) return st;
    return t;
  }
  constexpr int64_t kChunk = 1 << 16;
  std::vector<std::byte> wide(static_cast<size_t>(std::min(h.numel, kChunk)) * 8);
  for (int64_t first = 0; first < h.numel; first += kChunk) {
    const int64_t n = std::min(kChunk, h.numel - first);
    if (auto st = read(first, n, wide.data()); !st.ok()) return st;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = first + j;
      if (dtype == DType::kF32) {
        double v;
        std::memcpy(&v, wide.data() + 8 * j, 8);
        const float f = static_cast<float>(v);
        std::memcpy(t.data.data() + 4 * i, &f, 4);
      } else {
        int64_t v;
        std::memcpy(&v, wide.data() + 8 * j, 8);
        if (v < INT32_MIN || v > INT32_MAX) {
          return absl::InvalidArgumentError(
              absl::StrCat("int64 value ", v, " at flat index ", i, " does not fit in int32"));
        }
        const int32_t n32 = static_cast<int32_t>(v);
        std::memcpy(t.data.data() + 4 * i, &n32, 4);
      }
    }
  }
  return t;
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(errno), absl::StrCat("cannot ", what, " '", path, "': ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<HostTensor> ParseNpy(absl::string_view bytes) {
  auto h = ParseNpyHeader(bytes);
  if (!h.ok()) return h.status();
  const absl::string_view payload = bytes.substr(static_cast<size_t>(h->data_offset));
  if (auto st = CheckDataBytes(*h, static_cast<int64_t>(payload.size())); !st.ok()) return st;
  const int size = NpyElementSize(h->element);
  return ToTensor(*h, [&](int64_t first, int64_t count, void* dst) {
    if (count > 0) std::memcpy(dst, payload.data() + first * size, static_cast<size_t>(count * size));
    return absl::OkStatus();
  });
}

absl::StatusOr<NpyFile> NpyFile::Open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer forever.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Errno("open", path);
  auto fail = [fd, &path](absl::Status st) {
    close(fd);
    return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
  };
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(Errno("stat", path));
  if (!S_ISREG(st.st_mode)) return fail(absl::InvalidArgumentError("not a regular file (a .npy file must be one)"));
  if (st.st_size > kNpyMaxBytes) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("the file has ", st.st_size, " bytes, more than the limit of ", kNpyMaxBytes)));
  }
  // The header only: at most its 12-byte preamble plus kNpyMaxHeaderBytes.
  std::string head(static_cast<size_t>(std::min<int64_t>(st.st_size, 12 + kNpyMaxHeaderBytes)), '\0');
  size_t done = 0;
  while (done < head.size()) {
    const ssize_t n = pread(fd, head.data() + done, head.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Errno("read", path));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  head.resize(done);
  auto h = ParseNpyHeader(head);
  if (!h.ok()) return fail(h.status());
  if (auto c = CheckDataBytes(*h, static_cast<int64_t>(st.st_size) - h->data_offset); !c.ok()) return fail(c);
  return NpyFile(path, fd, *std::move(h));
}

NpyFile::NpyFile(NpyFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), header_(std::move(other.header_)) {}

NpyFile::~NpyFile() {
  if (fd_ >= 0) close(fd_);
}

absl::Status NpyFile::ReadElements(int64_t first, int64_t count, void* dst) const {
  const int size = NpyElementSize(header_.element);
  if (first < 0 || count < 0 || first + count > header_.numel) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": elements [", first, ", ", first + count,
                                                   ") are outside the array's ", header_.numel));
  }
  auto* out = static_cast<char*>(dst);
  size_t want = static_cast<size_t>(count * size), done = 0;
  const off_t at = static_cast<off_t>(header_.data_offset + first * size);
  while (done < want) {
    const ssize_t n = pread(fd_, out + done, want - done, at + static_cast<off_t>(done));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Errno("read", path_);
    if (n == 0) return absl::DataLossError(absl::StrCat(path_, ": the file shrank while being read"));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<HostTensor> ReadNpy(const std::string& path) {
  auto file = NpyFile::Open(path);
  if (!file.ok()) return file.status();
  auto t = ToTensor(file->header(), [&](int64_t first, int64_t count, void* dst) {
    return file->ReadElements(first, count, dst);
  });
  if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat(path, ": ", t.status().message()));
  return t;
}

DType ToNpyDType(DType t) { return NpyDescr(t).empty() ? DType::kF32 : t; }

namespace {

// The header of a .npy file for `t`, or an error for a type without one.
absl::StatusOr<std::string> NpyHeaderFor(const HostTensor& t) {
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
  out.append(kMagic.data(), kMagic.size());
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out.append(header);
  return out;
}

}  // namespace

absl::StatusOr<std::string> SerializeNpy(const HostTensor& t) {
  auto header = NpyHeaderFor(t);
  if (!header.ok()) return header.status();
  std::string out = *std::move(header);
  out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  return out;
}

absl::Status WriteNpy(const std::string& path, const HostTensor& t) {
  // The header, then the tensor's own bytes: no second copy of the data.
  auto header = NpyHeaderFor(t);
  if (!header.ok()) return header.status();
  auto file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  if (auto st = (*file)->Write(*header); !st.ok()) return st;
  if (auto st = (*file)->Write(t.data.data(), t.data.size()); !st.ok()) return st;
  return (*file)->Commit();
}

}  // namespace kiln
