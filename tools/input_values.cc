#include "tools/input_values.h"
#include "graph/message_text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <new>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/npy.h"

namespace kiln::tools {
namespace {

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

}  // namespace

absl::StatusOr<std::optional<InputRange>> InputRangeFor(const Graph& graph,
                                                        absl::string_view input_name) {
  const std::string key = absl::StrCat("input_range.", input_name);
  auto it = graph.metadata.find(key);
  if (it == graph.metadata.end()) return std::optional<InputRange>();
  std::vector<absl::string_view> parts = absl::StrSplit(it->second, ',');
  InputRange r;
  if (parts.size() != 2 || !absl::SimpleAtod(absl::StripAsciiWhitespace(parts[0]), &r.lo) ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(parts[1]), &r.hi) || !std::isfinite(r.lo) ||
      !std::isfinite(r.hi) || r.lo > r.hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("graph metadata '", key, "' = '", it->second, "' is not \"lo,hi\" with lo <= hi"));
  }
  return std::optional<InputRange>(r);
}

namespace {

// How a file's elements become the input's.
enum class Conversion { kAsIs, kFloat, kInt };

// FNV-1a: the same in every process (absl::Hash is seeded per process).
uint64_t StableHash(absl::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

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

// Checks a file's header against input `t`: the conversion that reads it,
// or an error naming what was expected.
absl::StatusOr<Conversion> CheckFile(const TensorInfo& t, const NpyFile& file) {
  const NpyHeader& h = file.header();
  const NpyElement e = h.element;
  std::optional<Conversion> conv;
  if ((t.dtype == DType::kF32 && e == NpyElement::kF32) || (t.dtype == DType::kF16 && e == NpyElement::kF16) ||
      (t.dtype == DType::kI32 && e == NpyElement::kI32) || (t.dtype == DType::kQ8_0 && e == NpyElement::kU8)) {
    conv = Conversion::kAsIs;
  } else if ((IsFloat(t.dtype) || t.dtype == DType::kQ8_0) && IsFloatElement(e)) {
    conv = Conversion::kFloat;
  } else if (t.dtype == DType::kI32 && e == NpyElement::kI64) {
    conv = Conversion::kInt;
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
absl::StatusOr<HostTensor> Allocate(const TensorInfo& t) {
  try {
    return HostTensor::Zeros(t.dtype, t.dims);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("out of host memory for the ",
                                                     ContiguousBytes(t.dtype, t.dims), " bytes of input ",
                                                     Describe(t)));
  }
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

// Reads the file into `out` (the input's zeros), converting in chunks so
// the file's values never exist as a second whole copy.
absl::Status ReadInto(const TensorInfo& t, const NpyFile& file, Conversion conv, HostTensor& out) {
  const NpyHeader& h = file.header();
  if (conv == Conversion::kAsIs) return file.ReadElements(0, h.numel, out.data.data());
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
      if (conv == Conversion::kInt) {
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

std::string FormatBytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / double(int64_t{1} << 30));
  if (n >= (1 << 20)) return absl::StrFormat("%.2f MiB", n / double(1 << 20));
  return absl::StrCat(n, " bytes");
}

}  // namespace

absl::StatusOr<std::vector<InputPlan>> PlanInputs(const Graph& graph,
                                                  const std::vector<std::pair<int, std::string>>& given,
                                                  const InputOptions& options) {
  std::vector<InputPlan> plans;
  int64_t generated = 0;
  std::vector<std::string> generated_names;
  for (int id : graph.inputs) {
    const TensorInfo& t = graph.tensors[id];
    InputPlan p;
    p.tensor = id;
    p.source = "random";
    for (const auto& [gid, src] : given) {
      if (gid == id) {
        p.source = src;
        p.given = true;
      }
    }
    if (p.source == "random" || p.source == "zeros") {
      if (p.source == "random") {
        if (auto range = InputRangeFor(graph, t.name); !range.ok()) return range.status();
      }
      const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
      if (__builtin_add_overflow(generated, bytes, &generated)) generated = INT64_MAX;
      generated_names.push_back(absl::StrCat(QuoteName(t.name), " ", FormatBytes(bytes)));
    } else {
      auto file = NpyFile::Open(p.source);
      if (!file.ok()) {
        return absl::Status(file.status().code(), absl::StrCat("input ", Describe(t), ": ", file.status().message()));
      }
      auto conv = CheckFile(t, *file);
      if (!conv.ok()) return conv.status();
      if (*conv != Conversion::kAsIs) {
        p.note = absl::StrCat(QuoteName(t.name), " ", NpyElementName(file->header().element),
                              t.dtype == DType::kQ8_0 ? " quantized to " : " read as ", DTypeName(t.dtype),
                              " (", p.source, ")");
      }
    }
    plans.push_back(std::move(p));
  }
  if (generated > options.max_generated_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the inputs kiln would make up (random or zeros) need ", generated, " bytes, more than the limit of ",
        options.max_generated_bytes, " (", ShortJoin(generated_names, 8),
        "); give them as .npy files, or raise --max-generated-bytes"));
  }
  return plans;
}

absl::StatusOr<HostTensor> MakeInputValue(const Graph& graph, const InputPlan& plan, const InputOptions& options) {
  const TensorInfo& t = graph.tensors[plan.tensor];
  if (plan.source == "zeros") return Allocate(t);
  if (plan.source == "random") {
    auto range = InputRangeFor(graph, t.name);
    if (!range.ok()) return range.status();
    auto out = Allocate(t);
    if (!out.ok()) return out.status();
    // Each input's values depend on the seed and its name, not on the order.
    FillRandom(t, *range, options.seed ^ StableHash(t.name), *out);
    return out;
  }
  auto file = NpyFile::Open(plan.source);
  if (!file.ok()) {
    return absl::Status(file.status().code(), absl::StrCat("input ", Describe(t), ": ", file.status().message()));
  }
  auto conv = CheckFile(t, *file);
  if (!conv.ok()) return conv.status();
  auto out = Allocate(t);
  if (!out.ok()) return out.status();
  if (auto st = ReadInto(t, *file, *conv, *out); !st.ok()) return st;
  return out;
}

std::vector<std::string> InputNotes(const Graph& graph, const std::vector<InputPlan>& plans) {
  std::vector<std::string> lines, unasked;
  for (const InputPlan& p : plans) {
    if (!p.given) unasked.push_back(QuoteName(graph.tensors[p.tensor].name));
  }
  if (!unasked.empty()) {
    lines.push_back(absl::StrCat("random values (no --input given) for ", ShortJoin(unasked, 16)));
  }
  for (const InputPlan& p : plans) {
    if (!p.note.empty()) lines.push_back(absl::StrCat("converted ", p.note));
  }
  return lines;
}

HostTensor RandomInput(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed) {
  HostTensor out = HostTensor::Zeros(t.dtype, t.dims);
  FillRandom(t, range, seed, out);
  return out;
}

void FillRandom(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed, HostTensor& out) {
  std::mt19937_64 rng(seed);
  const int64_t n = t.numel();
  if (t.dtype == DType::kI32) {
    const double lo = range ? std::ceil(range->lo) : 0, hi = range ? std::floor(range->hi) : 15;
    const int64_t a = static_cast<int64_t>(std::clamp(lo, double{INT32_MIN}, double{INT32_MAX}));
    const int64_t b = std::max(a, static_cast<int64_t>(std::clamp(hi, double{INT32_MIN}, double{INT32_MAX})));
    std::uniform_int_distribution<int64_t> dist(a, b);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t v = static_cast<int32_t>(dist(rng));
      std::memcpy(out.data.data() + 4 * i, &v, 4);
    }
    return;
  }
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<double> uniform(range ? range->lo : 0, range ? range->hi : 1);
  auto next = [&]() -> float {
    return range ? static_cast<float>(range->lo == range->hi ? range->lo : uniform(rng))
                 : 0.5f * normal(rng);
  };
  if (t.dtype == DType::kQ8_0) {
    std::vector<float> block(kQ8BlockSize);
    for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
      for (float& v : block) v = next();
      QuantizeQ8Block(block.data(), out.data.data() + b * kQ8BlockBytes);
    }
    return;
  }
  const TensorView view = out.view();
  ForEachIndex(view.rank, view.dims, [&](const int64_t* idx) { StoreElement(view, idx, next()); });
}

}  // namespace kiln::tools
