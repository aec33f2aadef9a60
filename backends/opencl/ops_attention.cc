// flash_attn (kernels/flash_attn_dec.cl for up to 16 queries, which merges
// its own KV splits; kernels/flash_attn.cl tiles for more, with
// kernels/flash_attn_merge.cl for KV splits) and gated_delta_net (kernels/gated_delta_net.cl recurrent,
// kernels/gated_delta_net_chunk.cl chunked for long T).
// Specializations are few on purpose: head dims are rounded up to a bucket
// (64/128/256; GDN 32..256), flags and most dtypes are kernel arguments (the
// decode kernel's K/V dtypes and row alignment are -D, so its loads have no
// branch), so a conformance grid or a model needs a handful of programs, not
// one per shape.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "dispatch.h"
#include "ops/flash_attn.h"
#include "ops/gated_delta_net.h"

namespace kiln::opencl {
namespace {

constexpr int kFaWorkGroup = 128;  // WG in flash_attn.cl and flash_attn_dec.cl
constexpr int kFaDecodeMaxSq = 16;   // up to here, flash_attn_dec (rows stream K/V, no tiles)
constexpr int kMergeDims = 32, kMergeGroups = 8;  // MC, MG in flash_attn_merge.cl

struct FaConfig {
  bool decode = false;
  int D = 0, QR = 0, BC = 0;
  int max_tiles = 0;  // decode: MAXT, tiles per split at most
  size_t local_bytes = 0;
};

// The decode kernel's variants (flash_attn_dec.cl), tuned on the H200
// (bench/RESULTS.md); the environment overrides them to measure others.
struct FaDecodeKnobs {
  int nk = 4;         // NK, keys per work-item per tile: 2, 4 or 8 (KILN_OPENCL_FA_NK)
  int max_tiles = 16;  // MAXT, tiles per split at most, <= 32 (KILN_OPENCL_FA_MAXT)
  bool pipe = true;   // PIPE: the next tile's K/V loaded during this one (KILN_OPENCL_FA_PIPE=0: off)
  bool fuse = true;   // FUSE: the last work-group merges the splits (KILN_OPENCL_FA_FUSE=0: a merge kernel)
  int per_cu = 4;     // work-groups per compute unit the split length aims at (KILN_OPENCL_FA_PER_CU)
  bool xpose = true;  // XPOSE: PTX reduce-scatter of the dot products (KILN_OPENCL_FA_XPOSE=0: full butterflies)
};
FaDecodeKnobs DecodeKnobs() {
  FaDecodeKnobs k;
  const int64_t nk = EnvInt("KILN_OPENCL_FA_NK", k.nk);
  k.nk = nk == 2 || nk == 8 ? static_cast<int>(nk) : 4;
  k.max_tiles = static_cast<int>(std::clamp<int64_t>(EnvInt("KILN_OPENCL_FA_MAXT", k.max_tiles), 1, 32));
  if (const char* v = std::getenv("KILN_OPENCL_FA_PIPE"); v && std::string_view(v) == "0") k.pipe = false;
  if (const char* v = std::getenv("KILN_OPENCL_FA_FUSE"); v && std::string_view(v) == "0") k.fuse = false;
  if (const char* v = std::getenv("KILN_OPENCL_FA_XPOSE"); v && std::string_view(v) == "0") k.xpose = false;
  k.per_cu = static_cast<int>(std::clamp<int64_t>(EnvInt("KILN_OPENCL_FA_PER_CU", k.per_cu), 1, 64));
  return k;
}
constexpr int kFaFusedMaxSplits = 128;  // NSM in flash_attn_dec.cl

// KILN_OPENCL_FA_EMU=1: the decode kernel's warp-shuffle algorithm (NVIDIA's,
// with KILN_PTX) with the shuffles emulated in local memory (WARP_EMU), so
// PoCL tests it. Slow; not for real runs.
bool FaEmulateShuffles(const DeviceFacts& dev) {
  const char* v = std::getenv("KILN_OPENCL_FA_EMU");
  return PtxOption(dev).empty() && v && std::string_view(v) == "1";
}

// ptx: the device takes KILN_PTX (the kernel sums by warp shuffles, no
// local-memory reduction); emu: WARP_EMU (shuffles through local memory).
FaConfig ChooseFa(int64_t Sq, int64_t Hq, int64_t Hkv, int64_t Dk, int64_t Dv, bool ptx, bool emu) {
  FaConfig c;
  const int64_t dmax = std::max(Dk, Dv);
  c.D = dmax <= 64 ? 64 : dmax <= 128 ? 128 : 256;
  if (Sq <= kFaDecodeMaxSq) {
    // Rows are (query, head) pairs, a KV head's G heads consecutive: 4 per
    // block share each K/V read (one query's heads for G = 4, so blocks of
    // different sequences never share keys and masked keys skip per
    // sequence). Work-item arrays scale with QR: 4 keeps them in registers;
    // one QR for every shape keeps the programs few (rows past the last are
    // idle).
    const FaDecodeKnobs k = DecodeKnobs();
    c.decode = true;
    c.QR = 4;
    const int tpk = c.D / 8, kpp = kFaWorkGroup / tpk;
    c.BC = kpp * k.nk;
    c.max_tiles = k.max_tiles;
    // L_FLOATS in flash_attn_dec.cl: the largest of its three phases.
    const size_t ns = size_t(c.BC) * c.QR, sl = size_t(c.max_tiles) * c.BC;
    const size_t loop = sl * c.QR + (ptx || emu ? 0 : size_t(tpk) * (ns + 1) + ns);
    const size_t end = size_t(kpp) * c.QR * (2 + c.D);
    const size_t merge = k.fuse ? 2 * size_t(kFaFusedMaxSplits) * c.QR + c.QR : 0;
    c.local_bytes = sizeof(float) * (std::max({loop, end, merge}) + (emu ? kFaWorkGroup : 0)) + 16;
    return c;
  }
  c.QR = 16;
  if (c.D == 256) c.QR = std::min(c.QR, 8);
  c.BC = c.D == 256 ? 16 : 32;
  c.local_bytes = sizeof(float) * (size_t(c.QR) * c.D + size_t(c.BC) * (c.D + 1) + size_t(c.BC) * c.D +
                                   size_t(c.QR) * c.BC + 3 * size_t(c.QR)) + 16;
  return c;
}

Support FlashAttnSupports(const Graph& g, const Node& n, const DeviceFacts& dev) {
  const TensorInfo& q = *InputInfo(g, n, kFlashAttnQ);
  const TensorInfo& k = *InputInfo(g, n, kFlashAttnK);
  const TensorInfo& v = *InputInfo(g, n, kFlashAttnV);
  const int64_t Dk = q.dims[3], Dv = v.dims[3];
  if (Dk > 256 || Dv > 256) {
    return Support::No(absl::StrCat("head dims Dk=", Dk, ", Dv=", Dv, " exceed 256 (the largest kernel bucket)"));
  }
  const FaConfig c = ChooseFa(q.dims[1], q.dims[2], k.dims[2], Dk, Dv, !PtxOption(dev).empty(), FaEmulateShuffles(dev));
  if (c.local_bytes > dev.local_mem) {
    return Support::No(absl::StrCat("the flash_attn tile for head dim ", c.D, " needs ", c.local_bytes,
                                    " bytes of local memory; the device has ", dev.local_mem));
  }
  if (dev.max_work_group < kFaWorkGroup || dev.max_work_group < kMergeDims * kMergeGroups) {
    return Support::No(absl::StrCat("needs work-groups of ", kMergeDims * kMergeGroups, "; the device allows ",
                                    dev.max_work_group));
  }
  return Support::Yes();
}

// Whether every row of t starts 16 bytes aligned, for 8-element loads
// (2-byte types: offset and strides multiples of 8 elements; f32: of 4).
bool Rows16(const TensorArg& t) {
  const int64_t unit = t.info->dtype == DType::kF32 ? 4 : 8;
  if (t.info->dtype != DType::kF32 && t.info->dtype != DType::kF16 && t.info->dtype != DType::kBF16) return false;
  if (t.offset() % unit != 0 || t.dim(-1) % 8 != 0 || t.stride(-1) != 1) return false;
  for (int i = 0; i + 1 < t.rank(); ++i) {
    if (t.stride(i) % unit != 0) return false;
  }
  return true;
}

absl::Status PrepareFlashAttn(PrepareContext& ctx) {
  const TensorArg &q = ctx.in[kFlashAttnQ], &k = ctx.in[kFlashAttnK], &v = ctx.in[kFlashAttnV];
  const TensorArg mask = ctx.in.size() > kFlashAttnMask ? ctx.in[kFlashAttnMask] : TensorArg{};
  const TensorArg sinks = ctx.in.size() > kFlashAttnSinks ? ctx.in[kFlashAttnSinks] : TensorArg{};
  const TensorArg& out = ctx.out[kFlashAttnOut];
  const int64_t B = q.dim(0), Sq = q.dim(1), Hq = q.dim(2), Dk = q.dim(3);
  const int64_t Skv = k.dim(1), Hkv = k.dim(2), Dv = v.dim(3);
  if (B * Sq * Hq * Dv == 0) return absl::OkStatus();
  const FaConfig c = ChooseFa(Sq, Hq, Hkv, Dk, Dv, !PtxOption(*ctx.device).empty(), FaEmulateShuffles(*ctx.device));
  const FaDecodeKnobs knobs = DecodeKnobs();
  const int64_t G = Hq / Hkv;
  const int64_t row_blocks = (Sq * G + c.QR - 1) / c.QR;
  const int64_t rows = B * Hkv * row_blocks;
  // Split the KV length until the device has a few work-groups per compute
  // unit. The decode kernel's splits stay short (at most MAXT tiles): the
  // host does not know which keys the mask leaves live, and with several
  // sequences over one cache only their own splits have work (the others
  // read their mask and stop), so long splits would leave few work-groups
  // busy. The tiled kernel keeps splits of at least 128 keys.
  int64_t split_len = 0;
  if (c.decode) {
    const int64_t target = int64_t{knobs.per_cu} * std::max(1, ctx.device->compute_units);
    const int64_t max_len = int64_t{c.max_tiles} * c.BC;
    // KILN_OPENCL_FA_SPLIT: this split length (rounded to tiles, at most MAXT of them), to measure.
    const int64_t forced = EnvInt("KILN_OPENCL_FA_SPLIT", 0);
    split_len = forced > 0 ? std::min<int64_t>(RoundUp(forced, c.BC), max_len)
                           : std::clamp<int64_t>(RoundUp((Skv * rows + target - 1) / target, c.BC), c.BC, max_len);
  } else {
    const int64_t target = 8 * std::max(1, ctx.device->compute_units);
    const int64_t nsplit0 =
        std::clamp<int64_t>((target + rows - 1) / rows, 1, std::max<int64_t>(1, (Skv + 127) / 128));
    split_len = RoundUp((Skv + nsplit0 - 1) / nsplit0, c.BC);
  }
  const int64_t nsplit = std::max<int64_t>(1, (Skv + split_len - 1) / split_len);
  // Floats per partial row (PS in the kernels): 16-byte rows from the decode kernel.
  const int64_t ps = c.decode ? c.D + 4 : c.D + 2;
  const bool fused = c.decode && knobs.fuse && nsplit > 1 && nsplit <= kFaFusedMaxSplits;
  cl_mem part = ctx.dummy, counters = ctx.dummy;
  if (nsplit > 1) {
    auto s = ctx.Scratch(sizeof(float) * size_t(nsplit * B * Sq * Hq * ps));
    if (!s.ok()) return s.status();
    part = *s;
  }
  if (fused) {
    auto s = ctx.Scratch(sizeof(cl_uint) * size_t(rows), /*zeroed=*/true);  // one per row block, reset by the kernel
    if (!s.ok()) return s.status();
    counters = *s;
  }
  Int4 ms{0, 0, 0, 0};
  if (mask.present()) {
    ms = {mask.dim(0) == 1 ? 0 : mask.stride(0), mask.dim(1) == 1 ? 0 : mask.stride(1), mask.stride(2),
          mask.stride(3)};
  }
  const double max_bias = ctx.node->GetFloat("max_bias");
  const int64_t n_alibi = int64_t{1} << static_cast<int>(std::floor(std::log2(static_cast<double>(Hq))));
  const std::string dopt = absl::StrCat("-DD=", c.D);
  std::string options;
  const char* kernel = "flash_attn";
  if (c.decode) {
    kernel = "flash_attn_dec";
    // The fast program: f16 or bf16 K and V (cache types) in aligned rows.
    const DType kt = k.info->dtype;
    const bool fast = (kt == DType::kF16 || kt == DType::kBF16) && v.info->dtype == kt && Rows16(k) && Rows16(v);
    options = absl::StrCat(dopt, " -DQR=", c.QR, " -DNK=", knobs.nk, " -DMAXT=", c.max_tiles, " -DPIPE=", int(knobs.pipe),
                           " -DFUSE=", int(fused), " -DXPOSE=", int(knobs.xpose), PtxOption(*ctx.device));
    if (FaEmulateShuffles(*ctx.device)) absl::StrAppend(&options, " -DWARP_EMU=1");
    if (fast) absl::StrAppend(&options, " -DKDT=", int(kt), " -DVDT=", int(kt), " -DVEC=1");
  } else {
    options = absl::StrCat(dopt, " -DQR=", c.QR, " -DBC=", c.BC);
  }
  auto d = ctx.Add(kernel, options, kernel);
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(out, ctx.dummy).i32(int(out.info->dtype));
  a.tensor(q, ctx.dummy).i4({q.stride(0), q.stride(1), q.stride(2), 0}).i32(int(q.info->dtype));
  a.tensor(k, ctx.dummy).i4({k.stride(0), k.stride(1), k.stride(2), 0}).i32(int(k.info->dtype));
  a.tensor(v, ctx.dummy).i4({v.stride(0), v.stride(1), v.stride(2), 0}).i32(int(v.info->dtype));
  a.tensor(mask, ctx.dummy).i4(ms).i32(mask.present() ? int(mask.info->dtype) : 0).i32(mask.present());
  a.tensor(sinks, ctx.dummy).i32(sinks.present()).mem(part);
  a.i32(B).i32(Sq).i32(Skv).i32(Hq).i32(Hkv).i32(Dk).i32(Dv);
  a.f32(EffectiveScale(*ctx.node, Dk)).f32(ctx.node->GetFloat("softcap")).f32(max_bias).i32(n_alibi);
  a.i32(ctx.node->GetBool("causal")).i32(nsplit).i32(split_len).i32(row_blocks);
  if (c.decode) a.mem(counters);
  if (!c.decode) {
    // Vector loads of K/V rows when no q8_0 and whole float4s stay in a row.
    const bool vec4 = k.info->dtype != DType::kQ8_0 && v.info->dtype != DType::kQ8_0 && Dk % 4 == 0 &&
                      Dv % 4 == 0 && c.D % 4 == 0;
    a.i32(vec4);
  }
  (*d)->work_dim = 2;
  (*d)->local = {size_t(kFaWorkGroup), 1, 1};
  (*d)->global = {size_t(rows) * kFaWorkGroup, size_t(nsplit), 1};
  if (!a.status().ok()) return a.status();
  if (nsplit > 1 && !fused) {
    auto m = ctx.Add("flash_attn_merge", absl::StrCat(dopt, " -DPS=", ps), "flash_attn_merge");
    if (!m.ok()) return m.status();
    KernelArgs b((*m)->kernel);
    b.tensor(out, ctx.dummy).i32(int(out.info->dtype)).mem(part).tensor(sinks, ctx.dummy).i32(sinks.present());
    b.i32(B).i32(Sq).i32(Hq).i32(Dv).i32(nsplit);
    (*m)->work_dim = 1;
    (*m)->local = {size_t(kMergeDims * kMergeGroups), 1, 1};
    (*m)->global = {size_t(B * Sq * Hq * ((Dv + kMergeDims - 1) / kMergeDims)) * kMergeDims * kMergeGroups, 1, 1};
    return b.status();
  }
  return absl::OkStatus();
}

constexpr int kGdnColumns = 16;  // VC in gated_delta_net.cl: value columns per work-group

// VC: 8, 16 (default) or 32, KILN_OPENCL_GDN_VC to measure others.
int GdnColumns() {
  const int64_t v = EnvInt("KILN_OPENCL_GDN_VC", kGdnColumns);
  return v == 8 || v == 32 ? static_cast<int>(v) : kGdnColumns;
}

int GdnBucket(int64_t K) { return K <= 32 ? 32 : K <= 64 ? 64 : K <= 128 ? 128 : 256; }

Support GdnSupports(const Graph& g, const Node& n, const DeviceFacts& dev) {
  const TensorInfo& q = *InputInfo(g, n, kGdnQ);
  if (q.dims[3] > 256) return Support::No(absl::StrCat("key head size K=", q.dims[3], " exceeds 256"));
  if (dev.max_work_group < 128) return Support::No("needs work-groups of 128");
  return Support::Yes();
}

// The chunked form (kernels/gated_delta_net_chunk.cl) for T >= kGdnChunkMinT
// (KILN_OPENCL_GDN_CHUNK_T sets another threshold: CI runs the GDN grid with
// 64 so PoCL tests the chunked kernels). On the H200 the recurrent kernel
// was faster up to T = 1024 (H=32, K=V=128: 97 vs 287 us at T=64, 364 vs
// 497 at 256, 1933 vs 1966 at 1024), so only longer prompts go chunked.
constexpr int64_t kGdnChunk = 64, kGdnChunkMinT = 2048;  // C in gated_delta_net_chunk.cl
constexpr int64_t kGdnChunkColumns = 16;               // VC there: value columns per state work-group
constexpr size_t kGdnChunkPrepLocal = sizeof(float) * (4 * 64 + 64 * 65 + 3 * 64 * 33);
// Chunks go through the kernels in windows whose scratch stays under this
// (at least one chunk a window): each node owns its scratch for the life of
// the prepared split, so a model's GDN layers must not each hold gigabytes.
constexpr size_t kGdnChunkWindowBytes = size_t{64} << 20;

// Scratch of one chunk for every (batch row, value head).
size_t GdnChunkBytes(int64_t B, int64_t Hv, int64_t K, int64_t V) {
  return sizeof(float) * size_t(B * Hv * (kGdnChunk * (4 * K + V + kGdnChunk) + K));
}

// Whether the node runs chunked: long enough, and the device has the local
// memory and room for one chunk's scratch.
bool GdnChunked(const DeviceFacts& dev, int64_t B, int64_t T, int64_t Hv, int64_t K, int64_t V) {
  if (T < EnvInt("KILN_OPENCL_GDN_CHUNK_T", kGdnChunkMinT) || K > 256) return false;
  return dev.local_mem >= kGdnChunkPrepLocal && GdnChunkBytes(B, Hv, K, V) <= dev.max_alloc;
}

absl::Status PrepareGdnChunked(PrepareContext& ctx) {
  const TensorArg &q = ctx.in[kGdnQ], &k = ctx.in[kGdnK], &v = ctx.in[kGdnV], &g = ctx.in[kGdnG],
                  &beta = ctx.in[kGdnBeta];
  const TensorArg state = ctx.in.size() > kGdnState ? ctx.in[kGdnState] : TensorArg{};
  const TensorArg &out = ctx.out[kGdnOut], &fs = ctx.out[kGdnFinalState];
  const int64_t B = q.dim(0), T = q.dim(1), Hk = q.dim(2), K = q.dim(3), Hv = v.dim(2), V = v.dim(3);
  const bool kda = GdnIsKda(g.rank());
  const int64_t nc = (T + kGdnChunk - 1) / kGdnChunk;
  const size_t chunk_bytes = GdnChunkBytes(B, Hv, K, V);
  // KILN_OPENCL_GDN_CHUNK_WINDOW: chunks per window (to test several windows
  // on small cases, or to measure).
  const int64_t window = std::clamp<int64_t>(
      EnvInt("KILN_OPENCL_GDN_CHUNK_WINDOW", int64_t(kGdnChunkWindowBytes / chunk_bytes)), 1, nc);
  auto ws = ctx.Scratch(chunk_bytes * size_t(window));
  if (!ws.ok()) return ws.status();
  auto s3 = [](const TensorArg& t) { return Int4{t.stride(0), t.stride(1), t.stride(2), 0}; };
  const std::string options = PtxOption(*ctx.device);
  // Windows run in queue order on one scratch; after the first, the state
  // comes from final_state (contiguous), where the window before left it.
  for (int64_t c0 = 0; c0 < nc; c0 += window) {
    const int64_t n = std::min(window, nc - c0);
    auto p = ctx.Add("gated_delta_net_chunk", options, "gdn_chunk_prep");
    if (!p.ok()) return p.status();
    KernelArgs a((*p)->kernel);
    a.tensor(q, ctx.dummy).i4(s3(q)).i32(int(q.info->dtype));
    a.tensor(k, ctx.dummy).i4(s3(k)).i32(int(k.info->dtype)).tensor(v, ctx.dummy).i4(s3(v)).i32(int(v.info->dtype));
    a.tensor(g, ctx.dummy).i4({g.stride(0), g.stride(1), g.stride(2), kda ? g.stride(3) : 0}).i32(kda);
    a.tensor(beta, ctx.dummy).i4(s3(beta)).mem(*ws);
    a.i32(T).i32(Hk).i32(Hv).i32(K).i32(V).i32(c0).i32(n);
    a.i32(ctx.node->GetBool("l2norm_qk")).i32(GdnHeadMapOf(*ctx.node) == GdnHeadMap::kTiled);
    if (!a.status().ok()) return a.status();
    (*p)->local = {128, 1, 1};
    (*p)->global = {size_t(B * Hv * n) * 128, 1, 1};
    auto s = ctx.Add("gated_delta_net_chunk", options, "gdn_chunk_state");
    if (!s.ok()) return s.status();
    KernelArgs b((*s)->kernel);
    b.tensor(out, ctx.dummy).i32(int(out.info->dtype)).mem(*ws);
    if (c0 == 0) {
      b.tensor(state, ctx.dummy);
      b.i4(state.present() ? Int4{state.stride(0), state.stride(1), state.stride(2), state.stride(3)}
                           : Int4{0, 0, 0, 0});
      b.i32(state.present());
    } else {
      b.tensor(fs, ctx.dummy).i4({Hv * K * V, K * V, V, 1}).i32(1);
    }
    b.tensor(fs, ctx.dummy);
    b.i32(T).i32(Hv).i32(K).i32(V).i32(c0).i32(n).f32(EffectiveScale(*ctx.node, K));
    (*s)->local = {128, 1, 1};
    (*s)->global = {size_t(B * Hv * ((V + kGdnChunkColumns - 1) / kGdnChunkColumns)) * 128, 1, 1};
    if (!b.status().ok()) return b.status();
  }
  return absl::OkStatus();
}

absl::Status PrepareGdn(PrepareContext& ctx) {
  const TensorArg &q = ctx.in[kGdnQ], &k = ctx.in[kGdnK], &v = ctx.in[kGdnV], &g = ctx.in[kGdnG],
                  &beta = ctx.in[kGdnBeta];
  const TensorArg state = ctx.in.size() > kGdnState ? ctx.in[kGdnState] : TensorArg{};
  const TensorArg &out = ctx.out[kGdnOut], &fs = ctx.out[kGdnFinalState];
  const int64_t B = q.dim(0), T = q.dim(1), Hk = q.dim(2), K = q.dim(3), Hv = v.dim(2), V = v.dim(3);
  if (B * Hv * V == 0) return absl::OkStatus();
  if (GdnChunked(*ctx.device, B, T, Hv, K, V)) return PrepareGdnChunked(ctx);
  const bool kda = GdnIsKda(g.rank());
  const int vc = GdnColumns();
  auto d = ctx.Add("gated_delta_net",
                   absl::StrCat("-DKB=", GdnBucket(K), vc == kGdnColumns ? "" : absl::StrCat(" -DVC=", vc)),
                   "gdn_recurrent");
  if (!d.ok()) return d.status();
  auto s3 = [](const TensorArg& t) { return Int4{t.stride(0), t.stride(1), t.stride(2), 0}; };
  KernelArgs a((*d)->kernel);
  a.tensor(out, ctx.dummy).tensor(q, ctx.dummy).i4(s3(q)).i32(int(q.info->dtype));
  a.tensor(k, ctx.dummy).i4(s3(k)).i32(int(k.info->dtype)).tensor(v, ctx.dummy).i4(s3(v)).i32(int(v.info->dtype));
  a.tensor(g, ctx.dummy).i4({g.stride(0), g.stride(1), g.stride(2), kda ? g.stride(3) : 0}).i32(kda);
  a.tensor(beta, ctx.dummy).i4(s3(beta));
  a.tensor(state, ctx.dummy);
  a.i4(state.present() ? Int4{state.stride(0), state.stride(1), state.stride(2), state.stride(3)} : Int4{0, 0, 0, 0});
  a.i32(state.present()).tensor(fs, ctx.dummy);
  a.i32(B).i32(T).i32(Hk).i32(Hv).i32(K).i32(V).f32(EffectiveScale(*ctx.node, K));
  a.i32(ctx.node->GetBool("l2norm_qk")).i32(GdnHeadMapOf(*ctx.node) == GdnHeadMap::kTiled);
  (*d)->local = {128, 1, 1};
  (*d)->global = {size_t(B * Hv * ((V + vc - 1) / vc)) * 128, 1, 1};
  return a.status();
}

}  // namespace

void RegisterAttentionOps(std::vector<OpEntry>& ops) {
  ops.push_back({"flash_attn", FlashAttnSupports, PrepareFlashAttn});
  ops.push_back({"gated_delta_net", GdnSupports, PrepareGdn});
}

}  // namespace kiln::opencl
