#include "models/random_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/stable_hash.h"
#include "graph/message_text.h"
#include "graph/tensor.h"

namespace kiln::models {
namespace {

// splitmix64: a tiny, fast generator of good quality, enough for weights.
struct SplitMix {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

enum class Kind { kProjection, kNorm, kNormAroundZero, kBias, kConv, kDtBias, kALog };

Kind KindOf(const ModelConfig& c, const WeightSpec& s) {
  const std::string& n = s.name;
  if (absl::EndsWith(n, "conv1d.weight")) return Kind::kConv;
  if (absl::EndsWith(n, "dt_bias")) return Kind::kDtBias;
  if (absl::EndsWith(n, "A_log")) return Kind::kALog;
  if (s.dims.size() == 2) return Kind::kProjection;
  if (absl::EndsWith(n, ".bias")) return Kind::kBias;
  // The gated delta net's output norm applies w itself; the hybrids' other
  // norms apply 1 + w.
  const bool gated = absl::EndsWith(n, "linear_attn.norm.weight");
  return c.norm_offset_one && !gated ? Kind::kNormAroundZero : Kind::kNorm;
}

float Value(Kind kind, double u, double fan_in) {
  switch (kind) {
    case Kind::kProjection: return static_cast<float>((2 * u - 1) * std::sqrt(3.0 / fan_in));
    case Kind::kNorm: return static_cast<float>(1.0 + 0.2 * (u - 0.5));
    case Kind::kNormAroundZero: return static_cast<float>(0.2 * (u - 0.5));
    case Kind::kBias: return static_cast<float>(0.2 * (u - 0.5));
    case Kind::kConv: return static_cast<float>((2 * u - 1) * std::sqrt(3.0 / fan_in));
    case Kind::kDtBias: {
      // dt log-uniform in [0.001, 0.1]; dt_bias = softplus^-1(dt).
      const double dt = std::exp(std::log(0.001) + u * (std::log(0.1) - std::log(0.001)));
      return static_cast<float>(std::log(std::expm1(dt)));
    }
    case Kind::kALog: return static_cast<float>(std::log(1.0 + 15.0 * u));  // A in [1, 16)
  }
  return 0;
}

int64_t Numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int Threads(const RandomWeightOptions& o) {
  if (o.threads > 0) return o.threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

// Fills values [begin, end) of a weight on `threads` threads, chunk by chunk.
void FillParallel(const ModelConfig& c, const WeightSpec& spec, DType dtype, uint64_t seed, int64_t begin,
                  int64_t end, void* out, int threads) {
  const int64_t chunks = (end - begin + kRandomChunk - 1) / kRandomChunk;
  const int n = static_cast<int>(std::min<int64_t>(threads, chunks));
  if (n <= 1) {
    FillRandomWeight(c, spec, dtype, seed, begin, end, out);
    return;
  }
  const int esize = ElementSize(dtype);
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t) {
    pool.emplace_back([&, t] {
      for (int64_t ch = t; ch < chunks; ch += n) {
        const int64_t b = begin + ch * kRandomChunk, e = std::min(end, b + kRandomChunk);
        FillRandomWeight(c, spec, dtype, seed, b, e, static_cast<std::byte*>(out) + (b - begin) * esize);
      }
    });
  }
  for (std::thread& th : pool) th.join();
}

}  // namespace

DType RandomWeightDType(const WeightSpec& spec, const RandomWeightOptions& options) {
  return spec.dims.size() == 2 ? options.projection_dtype : DType::kF32;
}

void FillRandomWeight(const ModelConfig& c, const WeightSpec& spec, DType dtype, uint64_t seed, int64_t begin,
                      int64_t end, void* out) {
  const Kind kind = KindOf(c, spec);
  const double fan_in = static_cast<double>(spec.dims.back());
  const uint64_t name_seed = StableHash64(spec.name, seed);
  for (int64_t chunk_begin = begin; chunk_begin < end; chunk_begin += kRandomChunk) {
    SplitMix rng{name_seed ^ (static_cast<uint64_t>(chunk_begin / kRandomChunk) * 0xd1342543de82ef95ull)};
    const int64_t chunk_end = std::min(end, chunk_begin + kRandomChunk);
    for (int64_t i = chunk_begin; i < chunk_end; ++i) {
      const float v = Value(kind, rng.Uniform(), fan_in);
      const int64_t j = i - begin;
      switch (dtype) {
        case DType::kF16: static_cast<uint16_t*>(out)[j] = F32ToF16(v); break;
        case DType::kBF16: static_cast<uint16_t*>(out)[j] = F32ToBF16(v); break;
        default: static_cast<float*>(out)[j] = v; break;
      }
    }
  }
}

RandomWeightSource::RandomWeightSource(ModelConfig config, RandomWeightOptions options)
    : config_(std::move(config)), options_(options) {
  for (WeightSpec& s : ExpectedWeights(config_)) {
    std::string name = s.name;
    specs_.emplace(std::move(name), std::move(s));
  }
}

absl::StatusOr<Weight> RandomWeightSource::Get(absl::string_view name) {
  auto it = specs_.find(name);
  if (it == specs_.end() || it->second.optional) {
    return absl::NotFoundError(absl::StrCat("no random weight ", QuoteName(name)));
  }
  const WeightSpec& spec = it->second;
  Weight w;
  w.dtype = RandomWeightDType(spec, options_);
  w.dims = spec.dims;
  const int64_t n = Numel(spec.dims);
  auto bytes = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(n * ElementSize(w.dtype)));
  FillParallel(config_, spec, w.dtype, options_.seed, 0, n, bytes->data(), Threads(options_));
  auto data = std::make_shared<ConstantData>();
  data->data = bytes->data();
  data->size = bytes->size();
  data->keepalive = bytes;
  data->origin = absl::StrCat("random:", options_.seed, ":", DTypeName(w.dtype), ":", spec.name);
  w.data = std::move(data);
  return w;
}

absl::StatusOr<std::vector<WeightPlace>> WriteRandomWeightsFile(const ModelConfig& config,
                                                                const RandomWeightOptions& options,
                                                                const std::string& path) {
  auto file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  std::vector<WeightPlace> places;
  // Generated a window at a time on every thread, then written: memory stays
  // at one window whatever the model's size.
  constexpr int64_t kWindow = 256 * kRandomChunk;
  std::vector<std::byte> buffer;
  for (const WeightSpec& spec : ExpectedWeights(config)) {
    if (spec.optional) continue;
    WeightPlace place{spec.name, RandomWeightDType(spec, options), spec.dims};
    const uint64_t pad = (64 - (*file)->size() % 64) % 64;
    if (auto st = (*file)->WriteZeros(pad); !st.ok()) return st;
    place.offset = (*file)->size();
    const int64_t n = Numel(spec.dims);
    const int esize = ElementSize(place.dtype);
    place.bytes = static_cast<uint64_t>(n * esize);
    for (int64_t b = 0; b < n; b += kWindow) {
      const int64_t e = std::min(n, b + kWindow);
      buffer.resize(static_cast<size_t>((e - b) * esize));
      FillParallel(config, spec, place.dtype, options.seed, b, e, buffer.data(), Threads(options));
      if (auto st = (*file)->Write(buffer.data(), buffer.size()); !st.ok()) {
        return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
      }
    }
    places.push_back(std::move(place));
  }
  if (auto st = (*file)->Commit(); !st.ok()) return st;
  return places;
}

}  // namespace kiln::models
