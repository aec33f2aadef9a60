#include "tools/input_values.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

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

HostTensor RandomInput(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed) {
  HostTensor out = HostTensor::Zeros(t.dtype, t.dims);
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
    return out;
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
    return out;
  }
  const TensorView view = out.view();
  ForEachIndex(view.rank, view.dims, [&](const int64_t* idx) { StoreElement(view, idx, next()); });
  return out;
}

}  // namespace kiln::tools
