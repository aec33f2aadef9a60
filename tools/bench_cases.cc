// Cases of `kiln bench` (bench_cases.h).
#include "tools/bench_cases.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "graph/builder.h"

namespace kiln::tools {
namespace {

// Defaults of every key per op: a Qwen3-8B-like GQA attention layer, a
// Qwen3.5-like gated delta net layer, and an 8B model's FFN up projection.
const CaseParams& Defaults(absl::string_view op) {
  static const CaseParams fa = {{"b", "1"},      {"hq", "32"},  {"hkv", "8"},   {"dk", "128"}, {"dv", "128"},
                                {"sq", "1"},     {"skv", "4096"}, {"kv", "f16"}, {"q", "f32"},  {"mask", "none"},
                                {"cache", "shd"}};
  static const CaseParams gdn = {{"b", "1"},  {"t", "1"},     {"hk", "16"},     {"hv", "32"},
                                 {"k", "128"}, {"v", "128"},  {"gate", "gda"},  {"qkv", "f32"}};
  static const CaseParams linear = {{"m", "1"}, {"n", "12288"}, {"k", "4096"}, {"w", "f16"}, {"x", "f32"}};
  static const CaseParams none;
  if (op == "fa") return fa;
  if (op == "gdn") return gdn;
  if (op == "linear") return linear;
  return none;
}

// Cheap uniform values in [lo, hi] (xorshift), stored in t's dtype.
void FillUniform(HostTensor& t, float lo, float hi, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&]() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return lo + (hi - lo) * static_cast<float>((s >> 40) * (1.0 / (1ull << 24)));
  };
  int64_t n = 1;
  for (int64_t d : t.dims) n *= d;
  std::byte* p = t.data.data();
  switch (t.dtype) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) {
        const float v = next();
        std::memcpy(p + 4 * i, &v, 4);
      }
      return;
    case DType::kF16:
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const float v = next();
        const uint16_t h = t.dtype == DType::kF16 ? F32ToF16(v) : F32ToBF16(v);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case DType::kQ8_0:
      for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
        float v[kQ8BlockSize], amax = 0;
        for (float& x : v) x = next(), amax = std::max(amax, std::fabs(x));
        const float scale = amax / 127;
        const uint16_t h = F32ToF16(scale);
        std::byte* blk = p + b * kQ8BlockBytes;
        std::memcpy(blk, &h, 2);
        for (int i = 0; i < kQ8BlockSize; ++i) {
          const int q = scale > 0 ? static_cast<int>(std::lround(v[i] / scale)) : 0;
          blk[2 + i] = static_cast<std::byte>(static_cast<int8_t>(std::clamp(q, -127, 127)));
        }
      }
      return;
    case DType::kI32:
      for (int64_t i = 0; i < n; ++i) {
        const int32_t v = static_cast<int32_t>(next());
        std::memcpy(p + 4 * i, &v, 4);
      }
      return;
  }
}

absl::StatusOr<int64_t> Int(const CaseParams& p, absl::string_view key, int64_t min = 1) {
  int64_t v = 0;
  const std::string& s = p.find(key)->second;
  if (!absl::SimpleAtoi(s, &v) || v < min || v > (int64_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrCat("case key ", key, "=", s, ": want an integer >= ", min));
  }
  return v;
}

absl::StatusOr<DType> Type(const CaseParams& p, absl::string_view key) {
  auto t = ParseDType(p.find(key)->second);
  if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("case key ", key, ": ", t.status().message()));
  return *t;
}

#define KILN_ASSIGN(lhs, expr)          \
  auto lhs##_or = (expr);               \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  const auto lhs = *lhs##_or

std::string Canonical(const CaseParams& p) {
  return absl::StrJoin(p, ",", absl::PairFormatter("="));
}

// The FA mask: which cells each query row sees. "none" (all), "causal"
// (the causal attribute), "seqN" (N sequences, block-diagonal over query
// rows and cells) or "swaW" (a sliding window of W cells ending at the
// row's position).
struct MaskKind {
  enum { kNone, kCausal, kSeq, kWindow } kind = kNone;
  int64_t n = 0;
};

absl::StatusOr<MaskKind> ParseMask(absl::string_view s) {
  MaskKind m;
  int64_t v = 0;
  if (s == "none") return m;
  if (s == "causal") return m.kind = MaskKind::kCausal, m;
  if (absl::ConsumePrefix(&s, "seq") && absl::SimpleAtoi(s, &v) && v >= 1) {
    m.kind = MaskKind::kSeq, m.n = v;
    return m;
  }
  if (absl::ConsumePrefix(&s, "swa") && absl::SimpleAtoi(s, &v) && v >= 1) {
    m.kind = MaskKind::kWindow, m.n = v;
    return m;
  }
  return absl::InvalidArgumentError(absl::StrCat("case key mask=", s, ": want none, causal, seqN or swaW"));
}

// Visible cells [lo, hi) of query row i.
std::pair<int64_t, int64_t> Visible(const MaskKind& m, int64_t i, int64_t sq, int64_t skv) {
  const int64_t pos = skv - sq + i;  // the row's position in the cache
  switch (m.kind) {
    case MaskKind::kNone: return {0, skv};
    case MaskKind::kCausal: return {0, std::max<int64_t>(pos + 1, 0)};
    case MaskKind::kSeq: {
      const int64_t seq = i * m.n / sq;
      return {seq * skv / m.n, (seq + 1) * skv / m.n};
    }
    case MaskKind::kWindow: return {std::max<int64_t>(pos - m.n + 1, 0), std::max<int64_t>(pos + 1, 0)};
  }
  return {0, skv};
}

absl::StatusOr<BuiltCase> BuildFa(const CaseParams& p, uint64_t seed) {
  KILN_ASSIGN(b, Int(p, "b"));
  KILN_ASSIGN(hq, Int(p, "hq"));
  KILN_ASSIGN(hkv, Int(p, "hkv"));
  KILN_ASSIGN(dk, Int(p, "dk"));
  KILN_ASSIGN(dv, Int(p, "dv"));
  KILN_ASSIGN(sq, Int(p, "sq"));
  KILN_ASSIGN(skv, Int(p, "skv"));
  KILN_ASSIGN(kv, Type(p, "kv"));
  KILN_ASSIGN(qt, Type(p, "q"));
  KILN_ASSIGN(mask, ParseMask(p.find("mask")->second));
  // The K/V storage: "shd" [b, skv, hkv, d] (a token's heads together) or
  // "hsd" [b, hkv, skv, d] (a head's tokens together), read through a view.
  const std::string& cache = p.find("cache")->second;
  if (cache != "shd" && cache != "hsd") {
    return absl::InvalidArgumentError(absl::StrCat("case key cache=", cache, ": want shd or hsd"));
  }
  if (mask.kind == MaskKind::kSeq && (sq % mask.n != 0 || skv % mask.n != 0)) {
    return absl::InvalidArgumentError("case mask=seqN needs sq and skv multiples of N");
  }
  GraphBuilder gb("bench_fa");
  Tensor q = gb.Input("q", qt, {b, sq, hq, dk});
  auto kv_input = [&](const char* name, int64_t d) {
    if (cache == "shd") return gb.Input(name, kv, {b, skv, hkv, d});
    Tensor base = gb.Input(name, kv, {b, hkv, skv, d});
    const int64_t row = RowBytes(kv, d);
    return gb.View(base, {b, skv, hkv, d}, {hkv * skv * row, row, skv * row, ElementSize(kv)}, 0,
                   absl::StrCat(name, "_view"));
  };
  Tensor k = kv_input("k", dk);
  Tensor v = kv_input("v", dv);
  const bool has_mask = mask.kind == MaskKind::kSeq || mask.kind == MaskKind::kWindow;
  Tensor m = has_mask ? gb.Input("mask", DType::kF16, {1, 1, sq, skv}) : Tensor{};
  Attrs attrs = {{"causal", mask.kind == MaskKind::kCausal}};
  gb.Output(gb.Op1("flash_attn", {q, k, v, m}, attrs, "fa"));
  auto graph = gb.Build();
  if (!graph.ok()) return graph.status();

  BuiltCase c;
  c.graph = std::move(*graph);
  // Work: visible (row, cell) pairs; bytes: the cells any row sees, once.
  double pairs = 0;
  int64_t lo_all = skv, hi_all = 0, cells = 0;
  int64_t last_hi = -1;
  for (int64_t i = 0; i < sq; ++i) {
    auto [lo, hi] = Visible(mask, i, sq, skv);
    pairs += static_cast<double>(hi - lo);
    lo_all = std::min(lo_all, lo), hi_all = std::max(hi_all, hi);
    if (mask.kind == MaskKind::kSeq && lo >= last_hi) cells += hi - lo, last_hi = hi;
  }
  if (mask.kind != MaskKind::kSeq) cells = std::max<int64_t>(hi_all - lo_all, 0);
  c.flops = 2.0 * (dk + dv) * hq * pairs * b;
  const double cell_bytes = static_cast<double>(RowBytes(kv, dk) + RowBytes(kv, dv)) * hkv;
  c.bytes = b * (cell_bytes * cells + 4.0 * sq * hq * (dk + dv));
  c.memory_bound = sq <= 16 * (has_mask && mask.kind == MaskKind::kSeq ? mask.n : 1);
  c.shape = Canonical(p);

  const float inf = std::numeric_limits<float>::infinity();
  for (const char* name : {"q", "k", "v"}) {
    const TensorInfo& t = c.graph.tensors[c.graph.inputs[c.inputs.size()]];
    HostTensor h = HostTensor::Zeros(t.dtype, t.dims);
    FillUniform(h, -1, 1, seed + c.inputs.size());
    c.inputs.push_back({name, std::move(h)});
  }
  if (has_mask) {
    HostTensor h = HostTensor::Zeros(DType::kF16, {1, 1, sq, skv});
    const uint16_t zero = F32ToF16(0), minus_inf = F32ToF16(-inf);
    auto* mp = reinterpret_cast<uint16_t*>(h.data.data());
    for (int64_t i = 0; i < sq; ++i) {
      auto [lo, hi] = Visible(mask, i, sq, skv);
      for (int64_t j = 0; j < skv; ++j) mp[i * skv + j] = j >= lo && j < hi ? zero : minus_inf;
    }
    c.inputs.push_back({"mask", std::move(h)});
  }
  return c;
}

absl::StatusOr<BuiltCase> BuildGdn(const CaseParams& p, uint64_t seed) {
  KILN_ASSIGN(b, Int(p, "b"));
  KILN_ASSIGN(t, Int(p, "t"));
  KILN_ASSIGN(hk, Int(p, "hk"));
  KILN_ASSIGN(hv, Int(p, "hv"));
  KILN_ASSIGN(kd, Int(p, "k"));
  KILN_ASSIGN(vd, Int(p, "v"));
  KILN_ASSIGN(qkv, Type(p, "qkv"));
  const std::string& gate = p.find("gate")->second;
  if (gate != "gda" && gate != "kda") return absl::InvalidArgumentError("case key gate: want gda or kda");
  const bool kda = gate == "kda";
  GraphBuilder gb("bench_gdn");
  Tensor q = gb.Input("q", qkv, {b, t, hk, kd});
  Tensor k = gb.Input("k", qkv, {b, t, hk, kd});
  Tensor v = gb.Input("v", qkv, {b, t, hv, vd});
  Tensor g = gb.Input("g", DType::kF32, kda ? std::vector<int64_t>{b, t, hv, kd} : std::vector<int64_t>{b, t, hv});
  Tensor beta = gb.Input("beta", DType::kF32, {b, t, hv});
  Tensor state = gb.Input("state", DType::kF32, {b, hv, kd, vd});
  auto outs = gb.Op("gated_delta_net", {q, k, v, g, beta, state}, {{"l2norm_qk", true}}, "gdn");
  for (Tensor o : outs) gb.Output(o);
  auto graph = gb.Build();
  if (!graph.ok()) return graph.status();
  BuiltCase c;
  c.graph = std::move(*graph);
  const double elems = static_cast<double>(b) * hv * kd * vd;
  // Per token: decay (1, KDA's per-row decay the same), S^T k (2), the
  // rank-1 update (2) and S^T q (2) per state element.
  c.flops = 7.0 * elems * t;
  c.bytes = 8.0 * elems + static_cast<double>(b) * t *
                              (ElementSize(qkv) * (2.0 * hk * kd + 2.0 * hv * vd) + 4.0 * hv * (kda ? kd + 1 : 2));
  c.memory_bound = t <= 4;
  c.shape = Canonical(p);
  const std::pair<float, float> ranges[] = {{-1, 1}, {-1, 1}, {-1, 1}, {-0.1f, 0}, {0.1f, 0.9f}, {-0.1f, 0.1f}};
  const char* names[] = {"q", "k", "v", "g", "beta", "state"};
  for (int i = 0; i < 6; ++i) {
    const TensorInfo& ti = c.graph.tensors[c.graph.inputs[i]];
    HostTensor h = HostTensor::Zeros(ti.dtype, ti.dims);
    FillUniform(h, ranges[i].first, ranges[i].second, seed + i);
    c.inputs.push_back({names[i], std::move(h)});
  }
  return c;
}

absl::StatusOr<BuiltCase> BuildLinear(const CaseParams& p, uint64_t seed) {
  KILN_ASSIGN(m, Int(p, "m"));
  KILN_ASSIGN(n, Int(p, "n"));
  KILN_ASSIGN(k, Int(p, "k"));
  KILN_ASSIGN(wt, Type(p, "w"));
  KILN_ASSIGN(xt, Type(p, "x"));
  GraphBuilder gb("bench_linear");
  Tensor x = gb.Input("x", xt, {m, k});
  Tensor w = gb.Input("w", wt, {n, k});
  gb.Output(gb.Op1("linear", {x, w}, {}, "linear"));
  auto graph = gb.Build();
  if (!graph.ok()) return graph.status();
  BuiltCase c;
  c.graph = std::move(*graph);
  c.flops = 2.0 * m * n * k;
  c.bytes = static_cast<double>(RowBytes(wt, k)) * n + static_cast<double>(RowBytes(xt, k)) * m + 4.0 * m * n;
  c.memory_bound = m <= 4;
  c.shape = Canonical(p);
  for (const char* name : {"x", "w"}) {
    const TensorInfo& t = c.graph.tensors[c.graph.inputs[c.inputs.size()]];
    HostTensor h = HostTensor::Zeros(t.dtype, t.dims);
    FillUniform(h, -1, 1, seed + c.inputs.size());
    c.inputs.push_back({name, std::move(h)});
  }
  return c;
}

}  // namespace

absl::StatusOr<CaseParams> ParseCaseParams(absl::string_view text) {
  CaseParams p;
  for (absl::string_view kv : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> e = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (e.first.empty() || e.second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--case: '", kv, "' is not key=value"));
    }
    p[e.first] = e.second;
  }
  return p;
}

absl::StatusOr<CaseParams> CompleteParams(absl::string_view op, const CaseParams& given) {
  CaseParams p = Defaults(op);
  if (p.empty()) return absl::InvalidArgumentError(absl::StrCat("unknown bench op '", op, "' (fa, gdn, linear)"));
  for (const auto& [k, v] : given) {
    if (!p.contains(k)) {
      std::vector<std::string> keys;
      for (const auto& [dk, dv] : p) keys.push_back(dk);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown case key '", k, "' for ", op, " (keys: ", absl::StrJoin(keys, ", "), ")"));
    }
    p[k] = v;
  }
  return p;
}

absl::StatusOr<BuiltCase> BuildCase(absl::string_view op, const CaseParams& params, uint64_t seed) {
  auto p = CompleteParams(op, params);
  if (!p.ok()) return p.status();
  if (op == "fa") return BuildFa(*p, seed);
  if (op == "gdn") return BuildGdn(*p, seed);
  return BuildLinear(*p, seed);
}

std::vector<BenchCaseSpec> DefaultCases(absl::string_view op, bool quick, bool full) {
  std::vector<BenchCaseSpec> out;
  auto add = [&](std::string name, CaseParams p) { out.push_back({std::string(op), std::move(name), std::move(p)}); };
  auto s = [](int64_t v) { return absl::StrCat(v); };
  if (op == "fa") {
    if (quick) {
      add("pp64@d0", {{"sq", "64"}, {"skv", "64"}, {"mask", "causal"}});
      add("tg@d1024", {{"sq", "1"}, {"skv", "1025"}});
      add("seq4@d256", {{"sq", "4"}, {"skv", "1024"}, {"mask", "seq4"}});
      return out;
    }
    for (int64_t d : {0, 1024, 8192, 32768}) {
      if (d == 32768 && !full) continue;  // ~280 GFLOP a run
      add(absl::StrCat("pp512@d", d), {{"sq", "512"}, {"skv", s(d + 512)}, {"mask", "causal"}});
    }
    for (int64_t d : {0, 1024, 8192, 32768}) add(absl::StrCat("tg@d", d), {{"sq", "1"}, {"skv", s(d + 1)}});
    for (int64_t d : {1024, 8192}) {
      add(absl::StrCat("seq1@d", d), {{"sq", "1"}, {"skv", s(d)}, {"mask", "seq1"}});
      add(absl::StrCat("seq8@d", d), {{"sq", "8"}, {"skv", s(8 * d)}, {"mask", "seq8"}});
    }
    if (full) add("seq8@d32768", {{"sq", "8"}, {"skv", s(8 * 32768)}, {"mask", "seq8"}});
    add("tg@d32768/swa4096", {{"sq", "1"}, {"skv", "32768"}, {"mask", "swa4096"}});
    return out;
  }
  if (op == "gdn") {
    if (quick) {
      add("tg/B1", {{"b", "1"}, {"t", "1"}});
      add("pp64", {{"t", "64"}, {"gate", "kda"}});
      return out;
    }
    for (const char* gate : {"gda", "kda"}) {
      for (int64_t b : {1, 8, 32}) add(absl::StrCat("tg/B", b, "/", gate), {{"b", s(b)}, {"t", "1"}, {"gate", gate}});
      for (int64_t t : {512, 4096}) add(absl::StrCat("pp", t, "/", gate), {{"t", s(t)}, {"gate", gate}});
    }
    return out;
  }
  if (op == "linear") {
    if (quick) {
      add("m1/f16", {{"m", "1"}, {"n", "1000"}, {"k", "1024"}});
      add("m37/bf16", {{"m", "37"}, {"n", "300"}, {"k", "520"}, {"w", "bf16"}});
      return out;
    }
    // FFN up projections (n = ffn, k = hidden) of 0.6B / 1.7B / 4B / 8B
    // Qwen3-like models, and the 8B's down projection.
    struct Shape { const char* name; int64_t n, k; };
    const Shape shapes[] = {{"0.6B.up", 3072, 1024}, {"1.7B.up", 6144, 2048}, {"4B.up", 9728, 2560},
                            {"8B.up", 12288, 4096},  {"8B.down", 4096, 12288}};
    for (int64_t m : {1, 512}) {
      for (const Shape& sh : shapes) {
        for (const char* w : {"f16", "bf16"}) {
          add(absl::StrCat("m", m, "/", sh.name, "/", w), {{"m", s(m)}, {"n", s(sh.n)}, {"k", s(sh.k)}, {"w", w}});
        }
      }
      for (const char* w : {"f32", "q8_0"}) {
        add(absl::StrCat("m", m, "/1.7B.up/", w), {{"m", s(m)}, {"n", "6144"}, {"k", "2048"}, {"w", w}});
      }
    }
    return out;
  }
  return out;
}

}  // namespace kiln::tools
