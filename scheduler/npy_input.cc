#include "scheduler/npy_input.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kiln {

// Symmetric int8 quantization of 32 floats: an f16 scale, then the values.
void QuantizeQ8Block(const float* v, std::byte* out) {
  float amax = 0;
  for (int i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(v[i]));
  const float scale = amax / 127.f;
  const uint16_t h = F32ToF16(scale);
  std::memcpy(out, &h, 2);
  for (int i = 0; i < kQ8BlockSize; ++i) {
    const float q = scale > 0 ? std::nearbyint(v[i] / scale) : 0.f;
    out[2 + i] = static_cast<std::byte>(static_cast<int8_t>(std::clamp(q, -127.f, 127.f)));
  }
}


namespace {

bool IsFloatElement(NpyElement e) {
  return e == NpyElement::kF32 || e == NpyElement::kF16 || e == NpyElement::kF64;
}

// What a .npy file for an input of this dtype may hold, for errors.
std::string Accepted(DType t) {
  switch (t) {
    case DType::kI32: return "int32, or int64 whose values fit in int32";
    case DType::kQ8_0:
      return "float32, float16 or float64 (quantized to q8_0), or uint8 holding the packed blocks "
             "(innermost dim: 34 bytes per 32 values)";
    default: return "float32, float16 or float64";
  }
}

// The file's dims an input of `t` needs: its own, except packed q8_0 bytes.
std::vector<int64_t> FileDimsFor(const TensorInfo& t, NpyElement e) {
  std::vector<int64_t> dims = t.dims;
  if (t.dtype == DType::kQ8_0 && e == NpyElement::kU8 && !dims.empty()) {
    dims.back() = RowBytes(DType::kQ8_0, dims.back());
  }
  return dims;
}

float LoadFloat(NpyElement e, const std::byte* p) {
  switch (e) {
    case NpyElement::kF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return F16ToF32(h);
    }
    case NpyElement::kF64: {
      double d;
      std::memcpy(&d, p, 8);
      return static_cast<float>(d);
    }
    default: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
  }
}

}  // namespace

// Checks a file's header against input `t`: the conversion that reads it,
// or an error naming what was expected.
absl::StatusOr<NpyConversion> CheckNpyFor(const TensorInfo& t, const NpyFile& file) {
  const NpyHeader& h = file.header();
  const NpyElement e = h.element;
  std::optional<NpyConversion> conv;
  if ((t.dtype == DType::kF32 && e == NpyElement::kF32) || (t.dtype == DType::kF16 && e == NpyElement::kF16) ||
      (t.dtype == DType::kI32 && e == NpyElement::kI32) || (t.dtype == DType::kQ8_0 && e == NpyElement::kU8)) {
    conv = NpyConversion::kAsIs;
  } else if ((IsFloat(t.dtype) || t.dtype == DType::kQ8_0) && IsFloatElement(e)) {
    conv = NpyConversion::kFloat;
  } else if (t.dtype == DType::kI32 && e == NpyElement::kI64) {
    conv = NpyConversion::kInt;
  }
  if (!conv) {
    return absl::InvalidArgumentError(absl::StrCat("input ", Describe(t), ": ", file.path(), " holds ",
                                                   NpyElementName(e), " values; a ", DTypeName(t.dtype),
                                                   " input takes ", Accepted(t.dtype)));
  }
  const std::vector<int64_t> want = FileDimsFor(t, e);
  if (h.dims != want) {
    return absl::InvalidArgumentError(absl::StrCat("input ", Describe(t), ": ", file.path(), " holds shape ",
                                                   ShapeString(h.dims), ", expected ", ShapeString(want)));
  }
  return *conv;
}

// Zeros of t's type and shape; running out of memory names the input.
absl::StatusOr<HostTensor> AllocateFor(const TensorInfo& t) {
  try {
    return HostTensor::Zeros(t.dtype, t.dims);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("out of host memory for the ",
                                                     ContiguousBytes(t.dtype, t.dims), " bytes of input ",
                                                     Describe(t)));
  }
}

// Reads the file into `out` (the input's zeros), converting in chunks so
// the file's values never exist as a second whole copy.
absl::Status ReadNpyInto(const TensorInfo& t, const NpyFile& file, NpyConversion conv, HostTensor& out) {
  const NpyHeader& h = file.header();
  if (conv == NpyConversion::kAsIs) return file.ReadElements(0, h.numel, out.data.data());
  constexpr int64_t kChunk = int64_t{1} << 16;  // elements, a multiple of kQ8BlockSize
  const int size = NpyElementSize(h.element);
  std::vector<std::byte> buf(static_cast<size_t>(std::min(h.numel, kChunk) * size));
  std::vector<float> block(kQ8BlockSize);
  std::byte* dst = out.data.data();
  for (int64_t first = 0; first < h.numel; first += kChunk) {
    const int64_t n = std::min(kChunk, h.numel - first);
    if (auto st = file.ReadElements(first, n, buf.data()); !st.ok()) return st;
    for (int64_t j = 0; j < n; ++j) {
      const std::byte* p = buf.data() + j * size;
      const int64_t i = first + j;
      if (conv == NpyConversion::kInt) {
        int64_t v;
        std::memcpy(&v, p, 8);
        if (v < INT32_MIN || v > INT32_MAX) {
          return absl::InvalidArgumentError(absl::StrCat("input ", Describe(t), ": ", file.path(), " holds ", v,
                                                         " at flat index ", i, ", which does not fit in int32"));
        }
        const int32_t v32 = static_cast<int32_t>(v);
        std::memcpy(dst + 4 * i, &v32, 4);
        continue;
      }
      const float f = LoadFloat(h.element, p);
      switch (t.dtype) {
        case DType::kF32: std::memcpy(dst + 4 * i, &f, 4); break;
        case DType::kF16: {
          const uint16_t v = F32ToF16(f);
          std::memcpy(dst + 2 * i, &v, 2);
          break;
        }
        case DType::kBF16: {
          const uint16_t v = F32ToBF16(f);
          std::memcpy(dst + 2 * i, &v, 2);
          break;
        }
        case DType::kQ8_0:
          block[i % kQ8BlockSize] = f;
          if (i % kQ8BlockSize == kQ8BlockSize - 1) {
            QuantizeQ8Block(block.data(), dst + (i / kQ8BlockSize) * kQ8BlockBytes);
          }
          break;
        default: break;
      }
    }
  }
  return absl::OkStatus();
}


absl::StatusOr<HostTensor> ReadNpyFor(const TensorInfo& t, const std::string& path) {
  auto file = NpyFile::Open(path);
  if (!file.ok()) {
    return absl::Status(file.status().code(), absl::StrCat("input ", Describe(t), ": ", file.status().message()));
  }
  auto conv = CheckNpyFor(t, *file);
  if (!conv.ok()) return conv.status();
  auto out = AllocateFor(t);
  if (!out.ok()) return out.status();
  if (auto st = ReadNpyInto(t, *file, *conv, *out); !st.ok()) return st;
  return out;
}

}  // namespace kiln
