// Grids of the first-class ops: flash_attn (head dims, GQA, query and KV
// lengths, every mask pattern and flag, dtypes, views) and gated_delta_net
// (GDA and KDA, head sizes and maps, lengths, states, dtypes, views).
#include <array>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "conformance/grids.h"
#include "ops/flash_attn.h"
#include "ops/gated_delta_net.h"

namespace kiln::conformance {
namespace {

// ---- flash_attn ----

struct FaShape {
  int64_t B, Sq, Skv, Hq, Hkv, Dk, Dv;
};

// Which heads and batch rows a mask has: [Bm, Hm, Sq, Skv].
enum class MaskDims { kNone, kBroadcast, kPerHead, kPerBatch, kPerBatchHead };

struct FaOptions {
  DType q = DType::kF32, kv = DType::kF16, out = DType::kF32;
  MaskDims mask = MaskDims::kNone;
  DType mask_dtype = DType::kF16;
  Dist mask_dist = Mask(MaskKind::kFinite);
  int64_t layout = kContiguous;  // for q, k, v (kPadded: K/V only, a cache window)
  bool mask_padded = false;
  bool causal = false, sinks = false;
  double softcap = 0, max_bias = 0, scale = 0;
  int64_t nan_from = -1;  // K/V cells from here on are NaN (unwritten)
};

std::optional<Case> FlashAttnCase(const FaShape& s, const FaOptions& o) {
  if (o.kv == DType::kQ8_0 && (s.Dk % kQ8BlockSize != 0 || s.Dv % kQ8BlockSize != 0)) return std::nullopt;
  if (o.max_bias > 0 && o.mask == MaskDims::kNone) return std::nullopt;  // ALiBi needs a mask
  const int64_t qkv_layout = o.layout == kPadded ? kContiguous : o.layout;
  const int64_t kv_layout = o.layout;
  Dist kv_dist = Normal();
  kv_dist.nan_from = o.nan_from;
  Case c{.op = "flash_attn",
         .inputs = {*WithLayout(In(o.q, {s.B, s.Sq, s.Hq, s.Dk}), qkv_layout),
                    *WithLayout(In(o.kv, {s.B, s.Skv, s.Hkv, s.Dk}, kv_dist), kv_layout),
                    *WithLayout(In(o.kv, {s.B, s.Skv, s.Hkv, s.Dv}, kv_dist), kv_layout)}};
  if (o.mask != MaskDims::kNone) {
    const bool per_batch = o.mask == MaskDims::kPerBatch || o.mask == MaskDims::kPerBatchHead;
    const bool per_head = o.mask == MaskDims::kPerHead || o.mask == MaskDims::kPerBatchHead;
    InputSpec m = In(o.mask_dtype, {per_batch ? s.B : 1, per_head ? s.Hq : 1, s.Sq, s.Skv}, o.mask_dist);
    m.padded = o.mask_padded;
    c.inputs.push_back(m);
  }
  if (o.sinks) {
    if (o.mask == MaskDims::kNone) c.inputs.push_back(Absent());
    c.inputs.push_back(In(DType::kF32, {s.Hq}, Uniform(-2, 3)));
  }
  if (o.causal) c.attrs["causal"] = true;
  if (o.softcap > 0) c.attrs["softcap"] = o.softcap;
  if (o.max_bias > 0) c.attrs["max_bias"] = o.max_bias;
  if (o.scale > 0) c.attrs["scale"] = o.scale;
  if (o.out != DType::kF32) c.attrs["out_dtype"] = std::string(DTypeName(o.out));
  return c;
}

// Head dims (Dk, Dv): every size in use, and Dk != Dv.
constexpr std::array<std::pair<int64_t, int64_t>, 11> kFaHeads = {{
    {32, 32}, {40, 40}, {64, 64}, {72, 72}, {80, 80}, {96, 96}, {112, 112}, {128, 128},
    {192, 192}, {256, 256}, {192, 128}}};

void AddFlashAttn(std::vector<OpSubGrid>& grids) {
  // Shapes: head dims x GQA x query and KV lengths x K/V dtypes.
  SubGrid shapes;
  shapes.name = "flash_attn.shapes";
  shapes.axes = {{"head", Indices(kFaHeads.size())},
                 {"gqa", {1, 2, 4, 8}},
                 {"sq", {1, 3, 32, 75, 512}},
                 {"skv", {1, 113, 512, 1024, 4096}},
                 {"kv", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0})}};
  shapes.make = [](const Point& p) -> std::optional<Case> {
    const auto [dk, dv] = kFaHeads[p.at("head")];
    const int64_t gqa = p.at("gqa"), hkv = gqa <= 2 ? 2 : 1;
    const int64_t sq = p.at("sq"), skv = p.at("skv");
    const DType kv = AsDType(p.at("kv"));
    // The longest shapes run with f16 K/V (the common cache type) only.
    if (kv != DType::kF16 && sq * skv > 512 * 1024) return std::nullopt;
    return FlashAttnCase({1, sq, skv, gqa * hkv, hkv, dk, dv},
                         {.kv = kv, .mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kTiles, 64)});
  };
  shapes.max_cost = 1.5e9;
  shapes.strength = 2;
  shapes.quick_extra = 16;
  grids.push_back({"flash_attn", std::move(shapes)});

  // Masks and flags, on a few shapes (non-power-of-2 head counts for ALiBi).
  static const std::vector<FaShape> mask_shapes = {
      {2, 1, 1024, 8, 2, 128, 128},  // decode
      {1, 3, 113, 6, 3, 64, 64},     // a few tokens, 6 heads
      {2, 75, 512, 4, 1, 80, 80},    // prefill
      {1, 4, 1200, 4, 2, 64, 64},    // 4 sequences decoding over one shared cache
  };
  SubGrid masks;
  masks.name = "flash_attn.masks";
  masks.axes = {{"mask", Indices(10)}, {"causal", {0, 1}}, {"sinks", {0, 1}}, {"softcap", {0, 1}},
                {"alibi", {0, 1}}, {"shape", Indices(mask_shapes.size())},
                {"mask_dtype", DTypes({DType::kF16, DType::kF32})}};
  masks.make = [](const Point& p) -> std::optional<Case> {
    const FaShape& s = mask_shapes[p.at("shape")];
    FaOptions o{.mask_dtype = AsDType(p.at("mask_dtype")), .causal = p.at("causal") != 0,
                .sinks = p.at("sinks") != 0, .softcap = p.at("softcap") ? 2.0 : 0.0,
                .max_bias = p.at("alibi") ? 8.0 : 0.0};
    auto set = [&o](MaskDims dims, Dist dist) {
      o.mask = dims;
      o.mask_dist = dist;
    };
    switch (p.at("mask")) {
      case 0: break;
      case 1: set(MaskDims::kBroadcast, Mask(MaskKind::kFinite)); break;
      case 2: set(MaskDims::kPerHead, Mask(MaskKind::kScattered)); break;
      case 3: set(MaskDims::kPerBatch, Mask(MaskKind::kTiles, 64)); break;
      case 4: set(MaskDims::kPerBatchHead, Mask(MaskKind::kTiles, 32)); break;
      case 5: set(MaskDims::kBroadcast, Mask(MaskKind::kTiles, 128)); break;
      case 6: set(MaskDims::kBroadcast, Mask(MaskKind::kRows)); break;
      case 7: set(MaskDims::kBroadcast, Mask(MaskKind::kWindow, s.Skv / 4 + 3)); break;
      case 8: set(MaskDims::kBroadcast, Mask(MaskKind::kMultiSeq, s.Sq >= 4 ? 4 : 3)); break;
      case 9:  // unwritten cache cells: NaN in K/V, hidden by the mask
        o.nan_from = s.Skv * 2 / 3 + 1;
        set(MaskDims::kBroadcast, Mask(MaskKind::kUnwritten, o.nan_from));
        break;
    }
    if (o.mask == MaskDims::kNone && p.at("mask_dtype") != static_cast<int64_t>(DType::kF16)) return std::nullopt;
    return FlashAttnCase(s, o);
  };
  masks.strength = 2;
  masks.quick_extra = 8;
  grids.push_back({"flash_attn", std::move(masks)});

  // Decode without a mask (every key live), f16 K/V: the Vulkan
  // cooperative-matrix decode kernel's cases (GQA groups as matrix rows,
  // 16-key tiles, KV splits), with lengths on both sides of a tile and of a
  // split, head counts that do not fill 16 rows, and every flag it takes.
  SubGrid nomask;
  nomask.name = "flash_attn.decode_nomask";
  nomask.axes = {{"head", Indices(kFaHeads.size())},
                 {"gqa", {1, 2, 4, 6, 8, 16}},
                 {"sq", {1, 2, 3, 8}},
                 {"skv", {1, 7, 16, 113, 256, 1000, 4100}},
                 {"flag", Indices(4)},  // none, sinks, softcap, causal
                 {"q", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
                 {"out", DTypes({DType::kF32, DType::kF16})},
                 {"b", {1, 2}}};
  nomask.make = [](const Point& p) -> std::optional<Case> {
    const auto [dk, dv] = kFaHeads[p.at("head")];
    const int64_t gqa = p.at("gqa"), hkv = gqa <= 4 ? 2 : 1;
    const int64_t flag = p.at("flag");
    return FlashAttnCase({p.at("b"), p.at("sq"), p.at("skv"), gqa * hkv, hkv, dk, dv},
                         {.q = AsDType(p.at("q")), .out = AsDType(p.at("out")), .causal = flag == 3,
                          .sinks = flag == 1, .softcap = flag == 2 ? 5.0 : 0.0});
  };
  nomask.strength = 2;
  nomask.quick_extra = 8;
  grids.push_back({"flash_attn", std::move(nomask)});

  // Configurations of real models (head counts scaled down where the
  // reference would be slow): every one is in the quick grid.
  struct Model {
    FaShape shape;
    FaOptions options;
  };
  static const std::vector<Model> models = {
      // Decode over a partly written 4096-cell cache (unwritten cells NaN).
      {{1, 1, 4096, 32, 8, 128, 128},
       {.mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kUnwritten, 3001), .nan_from = 3001}},
      // A causal prefill chunk: 256 new tokens at the end of 1024 cells.
      {{1, 256, 1024, 4, 1, 128, 128}, {.causal = true}},
      // Attention sinks and a 128-token sliding window (gpt-oss).
      {{1, 32, 1024, 16, 2, 64, 64},
       {.mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kWindow, 128), .causal = true, .sinks = true}},
      // Logit softcapping and a 1024-token window, head dim 256 (Gemma 2).
      {{1, 16, 2048, 8, 4, 256, 256},
       {.q = DType::kF32, .kv = DType::kBF16, .mask = MaskDims::kBroadcast,
        .mask_dist = Mask(MaskKind::kWindow, 1024), .softcap = 50}},
      // Dk 192, Dv 128, one KV head per query head (MLA-style prefill).
      {{1, 64, 512, 16, 16, 192, 128}, {.q = DType::kBF16, .kv = DType::kBF16, .out = DType::kBF16, .causal = true}},
      // 8 sequences decoding over one shared cache (block-diagonal mask).
      {{1, 8, 4096, 8, 2, 128, 128}, {.mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kMultiSeq, 8)}},
      // Batched decode over a q8_0 cache, a mask per batch row.
      {{4, 1, 2048, 16, 4, 128, 128},
       {.kv = DType::kQ8_0, .mask = MaskDims::kPerBatch, .mask_dist = Mask(MaskKind::kTiles, 128)}},
      // Edges of the CPU's decode (Sq <= 8) and prefill kernels: GQA 3 (padded
      // lane tiles), Skv not a multiple of the 32-key tile, sequences whose
      // boundaries cut tiles.
      {{1, 8, 1000, 12, 4, 64, 64}, {.mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kMultiSeq, 4)}},
      {{1, 9, 1000, 12, 4, 64, 64}, {.mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kMultiSeq, 3)}},
      // Prefill over a cache whose tail is unwritten (NaN), wholly masked tiles.
      {{2, 40, 777, 8, 8, 96, 96},
       {.mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kUnwritten, 650), .causal = true, .nan_from = 650}},
      // 64 query heads on one KV head: decode split over threads, prefill
      // with one position per lane tile.
      {{1, 1, 5000, 64, 1, 128, 128}, {.sinks = true}},
      {{1, 20, 300, 64, 1, 64, 64}, {.causal = true, .softcap = 30}},
      // ALiBi over 12 heads (not a power of 2), causal, all bf16.
      {{2, 128, 128, 12, 12, 64, 64},
       {.q = DType::kBF16, .kv = DType::kBF16, .out = DType::kBF16, .mask = MaskDims::kBroadcast,
        .mask_dist = Mask(MaskKind::kFinite), .causal = true, .max_bias = 8}},
  };
  SubGrid model;
  model.name = "flash_attn.models";
  model.axes = {{"model", Indices(models.size())}};
  model.make = [](const Point& p) { return FlashAttnCase(models[p.at("model")].shape, models[p.at("model")].options); };
  model.quick_extra = 0;
  grids.push_back({"flash_attn", std::move(model)});

  // Dtypes and memory layouts.
  static const std::vector<FaShape> layout_shapes = {
      {2, 1, 300, 8, 2, 64, 64},     // decode
      {1, 40, 200, 4, 4, 192, 128},  // prefill, Dk != Dv
  };
  SubGrid layout;
  layout.name = "flash_attn.layout";
  layout.axes = {{"q", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
                 {"kv", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0})},
                 {"out", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
                 {"layout", {kContiguous, kPadded, kPermuted, kPaddedPermuted}},
                 {"shape", Indices(layout_shapes.size())},
                 {"scale", {0, 1}}};
  layout.make = [](const Point& p) -> std::optional<Case> {
    const int64_t l = p.at("layout");
    return FlashAttnCase(layout_shapes[p.at("shape")],
                         {.q = AsDType(p.at("q")), .kv = AsDType(p.at("kv")), .out = AsDType(p.at("out")),
                          .mask = MaskDims::kBroadcast, .mask_dist = Mask(MaskKind::kScattered), .layout = l,
                          .mask_padded = l == kPaddedPermuted, .scale = p.at("scale") ? 0.3 : 0.0});
  };
  layout.strength = 2;
  layout.quick_extra = 4;
  grids.push_back({"flash_attn", std::move(layout)});
}

// ---- gated_delta_net ----

struct GdnShape {
  int64_t B, T, Hk, Hv, K, V;
};

struct GdnOptions {
  bool kda = false, state = true, l2norm = true, tiled = false, inplace = false;
  DType dtype = DType::kF32;
  int64_t layout = kContiguous;  // of q, k, v
  double scale = 0;
};

Case GdnCase(const GdnShape& s, const GdnOptions& o) {
  // Without l2norm_qk, rows of norm about 1 keep the recurrence stable.
  const Dist qk = o.l2norm ? Normal() : UnitRows();
  Case c{.op = "gated_delta_net",
         .inputs = {*WithLayout(In(o.dtype, {s.B, s.T, s.Hk, s.K}, qk), o.layout),
                    *WithLayout(In(o.dtype, {s.B, s.T, s.Hk, s.K}, qk), o.layout),
                    *WithLayout(In(o.dtype, {s.B, s.T, s.Hv, s.V}), o.layout),
                    In(DType::kF32, o.kda ? std::vector<int64_t>{s.B, s.T, s.Hv, s.K}
                                          : std::vector<int64_t>{s.B, s.T, s.Hv},
                       Gate()),
                    In(DType::kF32, {s.B, s.T, s.Hv}, Beta())}};
  if (o.state) c.inputs.push_back(In(DType::kF32, {s.B, s.Hv, s.K, s.V}, Normal(0.5)));
  if (o.inplace) c.inplace = {{kGdnState, kGdnFinalState}};
  if (o.l2norm) c.attrs["l2norm_qk"] = true;
  if (o.tiled) c.attrs["head_map"] = std::string("tiled");
  if (o.scale > 0) c.attrs["scale"] = o.scale;
  return c;
}

void AddGatedDeltaNet(std::vector<OpSubGrid>& grids) {
  SubGrid shapes;
  shapes.name = "gated_delta_net.shapes";
  shapes.axes = {{"kda", {0, 1}}, {"kv", {16, 32, 64, 128, 256}}, {"t", {1, 2, 17, 64, 127, 256}},
                 {"state", {0, 1}}, {"b", {1, 3}}};
  shapes.make = [](const Point& p) -> std::optional<Case> {
    const int64_t kv = p.at("kv");
    return GdnCase({p.at("b"), p.at("t"), 1, 2, kv, kv}, {.kda = p.at("kda") != 0, .state = p.at("state") != 0});
  };
  shapes.strength = 2;
  shapes.quick_extra = 8;
  // T = 512 only in the full grid (lavapipe's chunked kernel is slow; the
  // chunked sub-grid covers several chunks in the quick grid).
  SubGrid shapes_long = shapes;
  shapes_long.name = "gated_delta_net.shapes_long";
  for (Axis& a : shapes_long.axes) {
    if (a.name == "t") a.values = {512};
  }
  shapes_long.full_only = true;
  grids.push_back({"gated_delta_net", std::move(shapes)});
  grids.push_back({"gated_delta_net", std::move(shapes_long)});

  SubGrid heads;
  heads.name = "gated_delta_net.heads";
  heads.axes = {{"ratio", {1, 2, 4}}, {"tiled", {0, 1}}, {"kda", {0, 1}}, {"l2norm", {0, 1}},
                {"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16})}, {"k", {32, 128}}, {"t", {1, 64}}};
  heads.make = [](const Point& p) -> std::optional<Case> {
    const int64_t k = p.at("k");
    return GdnCase({2, p.at("t"), 2, 2 * p.at("ratio"), k, k},
                   {.kda = p.at("kda") != 0, .l2norm = p.at("l2norm") != 0, .tiled = p.at("tiled") != 0,
                    .dtype = AsDType(p.at("dtype"))});
  };
  heads.strength = 2;
  heads.quick_extra = 4;
  grids.push_back({"gated_delta_net", std::move(heads)});

  // Configurations of real models. A prefill one too slow for CI on
  // lavapipe (the whole Qwen3-Next prefill took 175 s per run there,
  // bench/RESULTS.md) has a stand-in: the same head map, dtypes and flags
  // over several chunks, with fewer heads or tokens; the whole one is in the
  // full grid only.
  struct Model {
    GdnShape shape;
    GdnOptions options;
    std::optional<GdnShape> stand_in;
  };
  static const std::vector<Model> models = {
      // Qwen3-Next decode: 16 q/k heads, 32 value heads, state in place.
      {{4, 1, 16, 32, 128, 128}, {.inplace = true, .dtype = DType::kBF16}},
      // Qwen3-Next prefill from an empty state.
      {{1, 512, 16, 32, 128, 128}, {.state = false, .dtype = DType::kBF16}, GdnShape{1, 160, 2, 4, 128, 128}},
      // Kimi (KDA) decode, state in place.
      {{2, 1, 32, 32, 128, 128}, {.kda = true, .inplace = true}},
      // KDA prefill continuing from a state.
      {{1, 256, 8, 8, 128, 128}, {.kda = true, .dtype = DType::kF16}, GdnShape{1, 256, 2, 2, 128, 128}},
      // Tiled head map, 4 q/k heads for 16 value heads.
      {{1, 64, 4, 16, 128, 128}, {.tiled = true}, GdnShape{1, 64, 2, 8, 128, 128}},
  };
  for (const bool whole : {false, true}) {
    SubGrid model;
    model.name = whole ? "gated_delta_net.models_whole" : "gated_delta_net.models";
    model.axes = {{"model", Indices(models.size())}};
    // models: each model, or its stand-in; models_whole: the ones stood in for.
    model.make = [whole](const Point& p) -> std::optional<Case> {
      const Model& m = models[p.at("model")];
      if (whole && !m.stand_in) return std::nullopt;
      return GdnCase(whole || !m.stand_in ? m.shape : *m.stand_in, m.options);
    };
    model.quick_extra = 0;
    model.full_only = whole;
    grids.push_back({"gated_delta_net", std::move(model)});
  }

  static const std::vector<std::pair<int64_t, int64_t>> kv_sizes = {{128, 64}, {64, 128}, {128, 128}};
  SubGrid layout;
  layout.name = "gated_delta_net.layout";
  layout.axes = {{"inplace", {0, 1}}, {"layout", {kContiguous, kPadded, kPermuted, kPaddedPermuted}},
                 {"kv", Indices(kv_sizes.size())}, {"kda", {0, 1}}, {"t", {1, 33}}, {"scale", {0, 1}}};
  layout.make = [](const Point& p) -> std::optional<Case> {
    const auto [k, v] = kv_sizes[p.at("kv")];
    return GdnCase({2, p.at("t"), 2, 4, k, v},
                   {.kda = p.at("kda") != 0, .inplace = p.at("inplace") != 0, .layout = p.at("layout"),
                    .scale = p.at("scale") ? 0.1 : 0.0});
  };
  layout.strength = 2;
  grids.push_back({"gated_delta_net", std::move(layout)});

  // Long T, where device backends switch to a chunked form in chunks of 64
  // (OpenCL from T = 2048, Vulkan from 128 and 33 on CPU devices, the CPU
  // backend's when KILN_CPU_GDN_CHUNKED_MIN_T asks; CI forces them on): lengths past a
  // chunk boundary and not a multiple of it, K != V up to 256, both gates,
  // with and without l2norm_qk, a state in (in place or not), strided
  // inputs, bf16 data. Every pair of values is in the quick grid.
  static const std::vector<std::pair<int64_t, int64_t>> chunk_kv = {
      {128, 128}, {64, 128}, {128, 64}, {32, 32}, {64, 64}, {128, 32}, {32, 16}, {256, 64}};
  SubGrid chunked;
  chunked.name = "gated_delta_net.chunked";
  chunked.axes = {{"t", {65, 130, 200}},  {"kv", Indices(chunk_kv.size())}, {"kda", {0, 1}},
                  {"l2norm", {0, 1}},     {"state", {0, 1}},                {"inplace", {0, 1}},
                  {"layout", {kContiguous, kPaddedPermuted}}, {"dtype", DTypes({DType::kF32, DType::kBF16})}};
  chunked.make = [](const Point& p) -> std::optional<Case> {
    if (p.at("inplace") && !p.at("state")) return std::nullopt;  // in place needs a state
    const auto [k, v] = chunk_kv[p.at("kv")];
    return GdnCase({1, p.at("t"), 2, 4, k, v},
                   {.kda = p.at("kda") != 0, .state = p.at("state") != 0, .l2norm = p.at("l2norm") != 0,
                    .inplace = p.at("inplace") != 0, .dtype = AsDType(p.at("dtype")), .layout = p.at("layout")});
  };
  chunked.strength = 2;
  chunked.quick_extra = 0;
  grids.push_back({"gated_delta_net", std::move(chunked)});
}

}  // namespace

void AddAttentionGrids(std::vector<OpSubGrid>& grids) {
  AddFlashAttn(grids);
  AddGatedDeltaNet(grids);
}

}  // namespace kiln::conformance
