// Element types, shapes and host arrays of the public API.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/internal.h"
#include "graph/dtype.h"
#include "graph/tensor.h"

namespace kiln::api {

static_assert(static_cast<int>(DType::kF32) == static_cast<int>(kiln::DType::kF32) &&
              static_cast<int>(DType::kF16) == static_cast<int>(kiln::DType::kF16) &&
              static_cast<int>(DType::kBF16) == static_cast<int>(kiln::DType::kBF16) &&
              static_cast<int>(DType::kI32) == static_cast<int>(kiln::DType::kI32) &&
              static_cast<int>(DType::kQ8_0) == static_cast<int>(kiln::DType::kQ8_0),
              "the public DType numbering is kiln's");

const char* Version() { return KILN_API_VERSION; }

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: case DType::kF16: case DType::kBF16: case DType::kI32: case DType::kQ8_0: {
      const absl::string_view n = kiln::DTypeName(ToInternal(dtype));
      return std::string_view(n.data(), n.size());
    }
  }
  return "unknown";
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  return Guard("ParseDType", [&]() -> absl::StatusOr<DType> {
    auto t = kiln::ParseDType(absl::string_view(name.data(), name.size()));
    if (!t.ok()) return t.status();
    return ToPublic(*t);
  });
}

absl::StatusOr<size_t> ContiguousBytes(DType dtype, absl::Span<const int64_t> dims) {
  const auto shape = [&] { return absl::StrCat("[", absl::StrJoin(dims, ","), "]"); };
  if (static_cast<unsigned>(dtype) > static_cast<unsigned>(DType::kQ8_0)) {
    return absl::InvalidArgumentError(absl::StrCat("dtype ", static_cast<int>(dtype), " is not a kiln dtype"));
  }
  if (dims.empty() || dims.size() > static_cast<size_t>(kiln::kMaxRank)) {
    return absl::InvalidArgumentError(absl::StrCat("shape ", shape(), " has rank ", dims.size(),
                                                   "; kiln tensors have rank 1 to ", kiln::kMaxRank));
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("shape ", shape(), " has a negative dim"));
    if (__builtin_mul_overflow(n, d, &n)) {
      return absl::InvalidArgumentError(absl::StrCat("shape ", shape(), " has more elements than fit in int64"));
    }
  }
  if (dtype == DType::kQ8_0) {
    if (dims.back() % kiln::kQ8BlockSize != 0) {
      return absl::InvalidArgumentError(absl::StrCat("q8_0 shape ", shape(), ": the innermost dim must be a multiple of ",
                                                     kiln::kQ8BlockSize));
    }
    int64_t bytes;
    if (__builtin_mul_overflow(n / kiln::kQ8BlockSize, int64_t{kiln::kQ8BlockBytes}, &bytes)) {
      return absl::InvalidArgumentError(absl::StrCat("shape ", shape(), " is too large"));
    }
    return static_cast<size_t>(bytes);
  }
  int64_t bytes;
  if (__builtin_mul_overflow(n, int64_t{kiln::ElementSize(ToInternal(dtype))}, &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("shape ", shape(), " is too large"));
  }
  return static_cast<size_t>(bytes);
}

TensorDesc DescOf(const kiln::TensorInfo& t) {
  TensorDesc d;
  d.name = t.name;
  d.dtype = ToPublic(t.dtype);
  d.dims = t.dims;
  d.bytes = static_cast<size_t>(kiln::ContiguousBytes(t.dtype, t.dims));
  return d;
}

PipelineStats ToPublic(const kiln::PipelineStats& s) {
  PipelineStats p;
  p.created = s.created;
  p.reused = s.cache_hits;
  p.loaded_from_disk = s.disk_hits;
  p.compile_ms = s.compile_ms;
  p.disk_ms = s.disk_ms;
  return p;
}

int64_t HostArray::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return dims_.empty() ? 0 : n;
}

absl::StatusOr<HostArray> HostArray::Zeros(DType dtype, std::vector<int64_t> dims) {
  return Guard("HostArray::Zeros", [&]() -> absl::StatusOr<HostArray> {
    auto bytes = ContiguousBytes(dtype, dims);
    if (!bytes.ok()) return bytes.status();
    HostArray a;
    a.dtype_ = dtype;
    a.dims_ = std::move(dims);
    try {
      a.bytes_.assign(*bytes, std::byte{0});
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat("out of host memory for a host array of ", *bytes, " bytes"));
    }
    return a;
  });
}

absl::StatusOr<HostArray> HostArray::Copy(DType dtype, std::vector<int64_t> dims, const void* data, size_t bytes) {
  return Guard("HostArray::Copy", [&]() -> absl::StatusOr<HostArray> {
    auto want = ContiguousBytes(dtype, dims);
    if (!want.ok()) return want.status();
    if (*want != bytes) {
      return absl::InvalidArgumentError(absl::StrCat("HostArray::Copy: a ", DName(dtype), " [",
                                                     absl::StrJoin(dims, ","), "] array is ", *want,
                                                     " bytes, given ", bytes));
    }
    if (bytes > 0 && data == nullptr) return absl::InvalidArgumentError("HostArray::Copy: data is null");
    auto a = Zeros(dtype, std::move(dims));
    if (!a.ok()) return a.status();
    if (bytes > 0) std::memcpy(a->data(), data, bytes);
    return a;
  });
}

}  // namespace kiln::api

namespace kiln::api {

absl::Status Annotate(const absl::Status& st, absl::string_view prefix) {
  if (st.ok()) return st;
  absl::Status out(st.code(), absl::StrCat(prefix, st.message()));
  st.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace kiln::api
