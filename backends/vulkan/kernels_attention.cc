// flash_attn (flash_attn_decode.comp for few query rows, flash_attn_cm.comp or
// flash_attn.comp for many, + flash_attn_merge.comp for split KV) and
// gated_delta_net (gated_delta_net.comp, the fused recurrence).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "backends/vulkan/kernels_gdn_chunked.h"
#include "backends/vulkan/vk_kernels.h"
#include "ops/attention_scale.h"
#include "ops/flash_attn.h"
#include "ops/gated_delta_net.h"

namespace kiln::vk {
namespace {

bool IsFloatType(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// Largest query-row budget per workgroup for head dim dk (shared memory:
// Q rows and a K tile in f32 within 24 KiB, lavapipe has 32 KiB).
int RowBudget(int64_t dk) { return dk <= 64 ? 32 : dk <= 128 ? 16 : 8; }
int TileKeys(int64_t dk) { return dk <= 64 ? 32 : 16; }

Support SupportsFlashAttn(const Graph& graph, const Node& node, const DeviceFacts& facts) {
  if (node.inputs.size() < 3) return Support::No("flash_attn needs q, k and v");
  const TensorInfo& q = graph.tensors[node.inputs[kFlashAttnQ]];
  const TensorInfo& k = graph.tensors[node.inputs[kFlashAttnK]];
  const TensorInfo& v = graph.tensors[node.inputs[kFlashAttnV]];
  if (!IsFloatType(q.dtype)) return Support::No(absl::StrCat("q is ", DTypeName(q.dtype)));
  const int64_t dk = q.dims[3], dv = v.dims[3];
  if (dk > 256 || dv > 256) return Support::No("head dims above 256");
  if ((k.dtype == DType::kQ8_0 && dk % 32) || (v.dtype == DType::kQ8_0 && dv % 32)) {
    return Support::No("q8_0 K/V rows of partial blocks");
  }
  if (node.has_input(kFlashAttnSinks) && graph.tensors[node.inputs[kFlashAttnSinks]].dtype != DType::kF32) {
    return Support::No("sinks must be f32");
  }
  if (node.has_input(kFlashAttnMask)) {
    const DType mt = graph.tensors[node.inputs[kFlashAttnMask]].dtype;
    if (mt != DType::kF32 && mt != DType::kF16) return Support::No("mask must be f32 or f16");
  }
  const int64_t hq = q.dims[2];
  if (node.GetFloat("max_bias") > 0 && hq > 1024) return Support::No("ALiBi with more than 1024 query heads");
  return Support::Yes();
}

// A tuning and testing knob from the environment (unset or invalid: `dflt`).
int64_t EnvInt(const char* name, int64_t dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  return end && *end == 0 && x > 0 ? x : dflt;
}

// Query rows up to which flash_attn_decode.comp is used (its MAXROWS: a
// workgroup loops over them, each row reading the split's K/V again;
// beyond this the tiled kernel's reuse across rows wins).
constexpr int64_t kDecodeRows = 8;

// Whether K and V can be read as 16-byte runs of 8 elements per lane.
bool DecodeLoads(const TensorArg& t) {
  if (t.dtype() == DType::kQ8_0) return false;
  const int64_t unit = t.dtype() == DType::kF32 ? 4 : 8;
  if (t.strides[3] != 1 || t.offset % unit) return false;
  for (int i = 0; i < 3; ++i) {
    if (t.dims[i] > 1 && t.strides[i] % unit) return false;
  }
  return true;
}

// The partials' scratch ((m, l, acc[Dv]) per row, head and split; bound to
// d's slot 5) and the merge dispatch of a split-KV flash_attn.
absl::Status AddMerge(KernelContext& ctx, Dispatch& d, int64_t splits) {
  const TensorArg& q = ctx.in(kFlashAttnQ);
  const TensorArg& v = ctx.in(kFlashAttnV);
  const TensorArg& sinks = ctx.in(kFlashAttnSinks);
  const TensorArg& out = ctx.out(kFlashAttnOut);
  const int64_t B = q.dims[0], Sq = q.dims[1], Hq = q.dims[2], Dv = v.dims[3];
  auto scratch = ctx.scratch(static_cast<size_t>(B * Hq * Sq * splits * (Dv + 2) * 4), false);
  if (!scratch.ok()) return scratch.status();
  const Slot partials = *scratch;
  d.Bind(5, partials);
  // One workgroup per row and 32 output elements (flash_attn_merge.comp's DCH).
  Dispatch& m = ctx.Add("flash_attn_merge",
                        {static_cast<int32_t>(Dv), sinks.present() ? 1 : 0, DtCode(out.dtype())}, B * Hq * Sq,
                        (Dv + 31) / 32);
  m.U(B).U(Sq).U(Hq).U(splits).T(out).U(sinks.present() ? sinks.offset : 0);
  m.Bind(0, partials).Bind(5, out);
  if (sinks.present()) m.Bind(4, sinks);
  return absl::OkStatus();
}

// The push-constant words every FA shader (flash_attn, flash_attn_decode,
// flash_attn_cm) begins with: shape, scale, softcap, the KV split, q/k/v,
// the mask's offset and broadcast strides, out and the sinks' offset.
void PushFlashAttnHeader(KernelContext& ctx, Dispatch& d, int64_t splits, int64_t per_split) {
  const TensorArg& q = ctx.in(kFlashAttnQ);
  const TensorArg& k = ctx.in(kFlashAttnK);
  const TensorArg& mask = ctx.in(kFlashAttnMask);
  const TensorArg& sinks = ctx.in(kFlashAttnSinks);
  d.U(q.dims[0]).U(q.dims[1]).U(k.dims[1]).U(q.dims[2]).U(k.dims[2]);
  d.F(EffectiveScale(ctx.node, q.dims[3])).F(ctx.node.GetFloat("softcap")).U(0).U(0).U(0);
  d.U(splits).U(per_split);
  d.T(q).T(k).T(ctx.in(kFlashAttnV));
  if (mask.present()) {
    d.U(mask.offset);
    for (int i = 0; i < 4; ++i) d.U(mask.dims[i] == 1 ? 0 : mask.strides[i]);
  } else {
    for (int i = 0; i < 5; ++i) d.U(0);
  }
  d.T(ctx.out(kFlashAttnOut)).U(sinks.present() ? sinks.offset : 0);
}

// ALiBi: one slope per query head after the fixed words, when max_bias > 0.
void PushAlibiSlopes(KernelContext& ctx, Dispatch& d) {
  const double max_bias = ctx.node.GetFloat("max_bias");
  const int64_t Hq = ctx.in(kFlashAttnQ).dims[2];
  if (max_bias > 0) {
    for (int64_t h = 0; h < Hq; ++h) d.F(AlibiSlope(h, Hq, max_bias));
  }
}

// Bindings 0-4: q, k, v, and the mask and sinks when present.
void BindFlashAttnInputs(KernelContext& ctx, Dispatch& d) {
  d.Bind(0, ctx.in(kFlashAttnQ)).Bind(1, ctx.in(kFlashAttnK)).Bind(2, ctx.in(kFlashAttnV));
  if (ctx.in(kFlashAttnMask).present()) d.Bind(3, ctx.in(kFlashAttnMask));
  if (ctx.in(kFlashAttnSinks).present()) d.Bind(4, ctx.in(kFlashAttnSinks));
}

// flash_attn_decode.comp: few query rows. False (nothing recorded) when the
// shapes are not its own or the device lacks subgroup shuffles.
absl::StatusOr<bool> RecordFlashAttnDecode(KernelContext& ctx) {
  const TensorArg& q = ctx.in(kFlashAttnQ);
  const TensorArg& k = ctx.in(kFlashAttnK);
  const TensorArg& v = ctx.in(kFlashAttnV);
  const TensorArg& mask = ctx.in(kFlashAttnMask);
  const TensorArg& sinks = ctx.in(kFlashAttnSinks);
  const TensorArg& out = ctx.out(kFlashAttnOut);
  const int64_t B = q.dims[0], Sq = q.dims[1], Hq = q.dims[2], D = q.dims[3];
  const int64_t Skv = k.dims[1], Hkv = k.dims[2];
  if (Sq > kDecodeRows || v.dims[3] != D || D % 8 || Skv == 0) return false;
  if (!DecodeLoads(k) || !DecodeLoads(v)) return false;
  // The lanes of a K/V row sum their parts by shuffles within a subgroup.
  const int64_t sgmin = ctx.facts.min_subgroup > 0 ? ctx.facts.min_subgroup : ctx.facts.subgroup_size;
  if (!ctx.facts.subgroup_shuffle || sgmin < 1) return false;
  const bool generic = ctx.facts.generic_kernels;
  const bool cpu = ctx.facts.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  const int64_t nv = D / 8;  // 16-byte (f32: 32-byte) vectors of 8 elements per row
  // Lanes per row (LPR): 8 on GPUs (a load instruction of 32 lanes reads
  // 128 contiguous bytes of each of 4 rows, and a score needs 3 shuffle
  // rounds, not 4 as with 16); generic: the whole subgroup (up to 32), any
  // D <= 256.
  int64_t lpr = 1;
  const int64_t lpr_cap = std::min<int64_t>(sgmin, generic ? 32 : EnvInt("KILN_VULKAN_FA_LPR", 8));
  while (lpr * 2 <= lpr_cap && (generic || lpr < nv)) lpr *= 2;
  const int64_t nvl = generic ? (32 + lpr - 1) / lpr : (nv + lpr - 1) / lpr;  // vectors per lane per row
  // Row slots per lane per step: 8 16-byte K/V loads per lane in flight
  // (4 KiB per subgroup of 32; on the H200 with 2 heads per workgroup 61 us
  // at Skv=16384 against 85 us for 16 loads, bench/RESULTS.md: fewer
  // registers, more subgroups resident). Generic: the f32 worst case.
  const int64_t words = generic || k.dtype() == DType::kF32 || v.dtype() == DType::kF32 ? 2 : 1;
  // Invocations: 4 subgroups (none waits on another in the key loop).
  const int64_t sg = ctx.facts.subgroup_size;
  const int wg = static_cast<int>(
      std::clamp<int64_t>(cpu ? 4 * sg : EnvInt("KILN_VULKAN_FA_WG", 128), sg, 1024) / sg * sg);
  const int nsg = static_cast<int>(wg / sgmin);
  const int64_t gqa = Hq / Hkv;
  // Heads per workgroup (their K/V rows read once for all, Q and the sums
  // of each in registers): 2 on GPUs (the next pair reads them from the
  // L2; 4 cost registers: 81 vs 61 us on the H200), 4 on CPU devices. With
  // a mask over at most 16384 keys, 1: a masked row's work per workgroup is
  // short (128-key splits), so more workgroups win over fewer K/V reads (on
  // the H200, 8 sequences x 512 cells 126 -> 81 us, 8 x 2048 240 -> 137, one
  // sequence of 512 70 -> 56; at 65536 keys 2 stayed faster, 0.64 vs 1.0 ms).
  const int gdefault = cpu ? 4 : mask.present() && Skv <= 16384 ? 1 : 2;
  const int gmax = static_cast<int>(std::min<int64_t>(4, EnvInt("KILN_VULKAN_FA_G", gdefault)));
  int G = 1;
  for (int g = 1; g <= std::min<int64_t>(gqa, gmax); ++g) {
    if (gqa % g == 0) G = g;
  }
  const int64_t head_groups = gqa / G;
  // The query rows loop inside a workgroup where a mask may leave most of
  // them dead in a split (several sequences over one cache); without a mask
  // (every row live) and in the generic build a workgroup each.
  // KILN_VULKAN_FA_ROWLOOP=never|always overrides that (tuning). Not with
  // more than 2 heads per workgroup: lavapipe's specialized build gave wrong
  // rows with 4 (q f32[1,3,8,72], K/V [1,4096,1,72], a mask of -inf tiles),
  // while 1 and 2, and 4 without the row loop, matched; GPUs take 1 or 2.
  const char* rl = std::getenv("KILN_VULKAN_FA_ROWLOOP");
  const std::string_view rlv = rl ? rl : "";
  const bool row_loop =
      !generic && Sq > 1 && G <= 2 && (rlv == "always" || (rlv != "never" && mask.present()));
  const int64_t row_groups = row_loop ? 1 : Sq;
  // With the row loop over a mask, one slot per lane: a split's live row
  // is short work, and fewer registers won (H200, 8 sequences x 512 cells
  // 37.1 -> 31.3 us, x 2048 101.1 -> 98.0; bench/RESULTS.md session 8).
  const int64_t unr_default = row_loop && mask.present() ? 1 : std::max<int64_t>(1, 8 / (2 * nvl * words));
  const int unr = static_cast<int>(std::clamp<int64_t>(EnvInt("KILN_VULKAN_FA_UNR", unr_default), 1, 16));
  const int64_t wgs = B * Hkv * head_groups * row_groups;
  // KV splits of a multiple of 128 keys: enough workgroups to keep the
  // GPU's memory busy; with a mask, one split per 128 keys so that a row's
  // live keys (a block of a shared cache) spread over as many workgroups as
  // a lone sequence's. KILN_VULKAN_FA_SPLIT_KEYS (tuning, tests: also on CPU
  // devices) sets the keys per split; KILN_VULKAN_FA_TARGET_WGS, _WG, _G,
  // _LPR and _UNR are tuning knobs too (workgroups to aim at, invocations
  // per workgroup, heads per workgroup, lanes per row, row slots per step).
  int64_t splits = 1;
  if (!cpu && Skv >= 256) {
    const int64_t target = EnvInt("KILN_VULKAN_FA_TARGET_WGS", 512);
    const int64_t want = mask.present() ? Skv / 128 : (target + wgs - 1) / wgs;
    splits = std::max<int64_t>(1, std::min<int64_t>({want, Skv / 128, 256}));
  }
  if (const int64_t keys = EnvInt("KILN_VULKAN_FA_SPLIT_KEYS", 0); keys > 0) {
    splits = std::min<int64_t>(256, (Skv + keys - 1) / keys);
  }
  int64_t per_split = (Skv + splits - 1) / splits;
  per_split = (per_split + 127) / 128 * 128;
  splits = std::max<int64_t>(1, (Skv + per_split - 1) / per_split);

  const double max_bias = ctx.node.GetFloat("max_bias");
  const double softcap = ctx.node.GetFloat("softcap");
  const std::vector<int32_t> flags = {DtCode(q.dtype()),
                                      DtCode(k.dtype()),
                                      DtCode(v.dtype()),
                                      mask.present() ? 1 : 0,
                                      mask.present() ? DtCode(mask.dtype()) : 0,
                                      sinks.present() ? 1 : 0,
                                      softcap > 0 ? 1 : 0,
                                      max_bias > 0 ? 1 : 0,
                                      ctx.node.GetBool("causal") ? 1 : 0,
                                      DtCode(out.dtype()),
                                      G};
  // D/8 (generic: from the params) and its bound for shared memory.
  std::vector<int32_t> spec = {wg, generic ? 0 : static_cast<int32_t>(nv), generic ? 32 : static_cast<int32_t>(nv)};
  if (generic) {
    spec.insert(spec.end(), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  } else {
    spec.insert(spec.end(), flags.begin(), flags.end());
  }
  // Split KV: flash_attn_merge.comp after the decode dispatch. The merge
  // fused into the decode dispatch (its last workgroup of each head group
  // merges; KILN_VULKAN_FA_FUSED_MERGE=1, where the weights of its
  // Sq * G * splits (row, head, split) triples (8 bytes each) fit beside the
  // combine's NSG * G * D floats in 24 KiB of shared memory) saves a
  // dispatch but measured slower on the H200 (Skv=16384: 58.0 against 46.0
  // us; the last workgroup merges alone), so it is not the default.
  const int64_t merge_words = Sq * G * splits;
  const bool fused = splits > 1 && row_loop && merge_words * 8 + nsg * G * D * 4 <= 24 * 1024 &&
                     EnvInt("KILN_VULKAN_FA_FUSED_MERGE", 0) == 1;
  spec.push_back(splits > 1 ? 1 : 0);
  spec.push_back(generic ? 1 : 0);
  spec.insert(spec.end(), {unr, static_cast<int32_t>(lpr), static_cast<int32_t>(nvl), nsg, fused ? 1 : 0,
                           fused ? static_cast<int32_t>(merge_words) : 1, row_loop ? 1 : 0});
  Dispatch& d = ctx.Add("flash_attn_decode", spec, head_groups * row_groups, Hkv, B * splits);
  PushFlashAttnHeader(ctx, d, splits, per_split);
  d.U(head_groups);
  while (d.params.size() < 50) d.U(0);
  for (int32_t f : flags) d.U(static_cast<uint32_t>(f));
  d.U(D);  // word 61
  const int64_t part_words = B * Hq * Sq * splits * (D + 2);
  d.U(static_cast<uint32_t>(part_words));  // word 62: FUSED's counters
  while (d.params.size() < 64) d.U(0);
  PushAlibiSlopes(ctx, d);
  BindFlashAttnInputs(ctx, d);
  if (fused) {
    // The partials, then a counter per (b, KV head, head group), zeroed.
    auto s = ctx.scratch(static_cast<size_t>((part_words + B * Hkv * head_groups) * 4), true);
    if (!s.ok()) return s.status();
    d.Bind(6, *s).Bind(5, out);
  } else if (splits > 1) {
    if (auto st = AddMerge(ctx, d, splits); !st.ok()) return st;
  } else {
    d.Bind(5, out);
  }
  return true;
}

// flash_attn_cm.comp: many query rows with f16 K/V on a device with NV
// cooperative matrices. False (nothing recorded) when the shapes are not
// its own.
absl::StatusOr<bool> RecordFlashAttnCoopmat(KernelContext& ctx) {
  const TensorArg& q = ctx.in(kFlashAttnQ);
  const TensorArg& k = ctx.in(kFlashAttnK);
  const TensorArg& v = ctx.in(kFlashAttnV);
  const TensorArg& mask = ctx.in(kFlashAttnMask);
  const TensorArg& sinks = ctx.in(kFlashAttnSinks);
  const TensorArg& out = ctx.out(kFlashAttnOut);
  const int64_t B = q.dims[0], Sq = q.dims[1], Hq = q.dims[2], D = q.dims[3];
  const int64_t Skv = k.dims[1], Hkv = k.dims[2];
  if (!HasCoopmat16(ctx.facts) || !ctx.facts.subgroup_shuffle || Sq <= kDecodeRows) return false;
  if (k.dtype() != DType::kF16 || v.dtype() != DType::kF16 || v.dims[3] != D || D % 16 || D > 128) return false;
  if (Skv == 0 || !DecodeLoads(k) || !DecodeLoads(v)) return false;
  // G query heads of one GQA group per workgroup: they share every K/V tile.
  const int64_t gqa = Hq / Hkv;
  const int G = gqa % 4 == 0 ? 4 : gqa % 2 == 0 ? 2 : 1;
  const int64_t rows = 64 / G;
  const int64_t wgs = B * ((Sq + rows - 1) / rows) * (Hq / G);
  // KV splits (with the merge dispatch) when heads x row blocks give fewer
  // workgroups than KILN_VULKAN_FA_CM_TARGET_WGS (a short chunk of rows on
  // a long cache), each split at least KILN_VULKAN_FA_CM_MIN_KEYS keys;
  // KILN_VULKAN_FA_CM_SPLITS forces a count (tuning, and tests of the split
  // path on small shapes). At 256 workgroups (Sq=512, 32 heads) on the H200,
  // 2 splits were 1.16x slower than none, 8 splits 1.35x.
  const int64_t target = EnvInt("KILN_VULKAN_FA_CM_TARGET_WGS", 128);
  const int64_t min_keys = EnvInt("KILN_VULKAN_FA_CM_MIN_KEYS", 1024);
  int64_t splits = std::clamp<int64_t>(std::min((target + wgs - 1) / wgs, Skv / min_keys), 1, 256);
  if (const int64_t forced = EnvInt("KILN_VULKAN_FA_CM_SPLITS", 0); forced > 0) splits = std::min<int64_t>(forced, 256);
  int64_t per_split = (Skv + splits - 1) / splits;
  per_split = (per_split + 31) / 32 * 32;  // whole 32-key tiles
  splits = std::max<int64_t>(1, (Skv + per_split - 1) / per_split);
  const double max_bias = ctx.node.GetFloat("max_bias");
  const double softcap = ctx.node.GetFloat("softcap");
  Dispatch& d = ctx.Add("flash_attn_cm",
                        {static_cast<int32_t>(D), DtCode(q.dtype()), mask.present() ? 1 : 0,
                         mask.present() ? DtCode(mask.dtype()) : 0, sinks.present() ? 1 : 0, softcap > 0 ? 1 : 0,
                         max_bias > 0 ? 1 : 0, ctx.node.GetBool("causal") ? 1 : 0, DtCode(out.dtype()), G,
                         splits > 1 ? 1 : 0},
                        (Sq + rows - 1) / rows, Hq / G, B * splits);
  PushFlashAttnHeader(ctx, d, splits, per_split);
  while (d.params.size() < 64) d.U(0);
  PushAlibiSlopes(ctx, d);
  BindFlashAttnInputs(ctx, d);
  if (splits > 1) {
    if (auto st = AddMerge(ctx, d, splits); !st.ok()) return st;
  } else {
    d.Bind(5, out);
  }
  return true;
}

absl::Status RecordFlashAttn(KernelContext& ctx) {
  const TensorArg& q = ctx.in(kFlashAttnQ);
  const TensorArg& k = ctx.in(kFlashAttnK);
  const TensorArg& v = ctx.in(kFlashAttnV);
  const TensorArg& mask = ctx.in(kFlashAttnMask);
  const TensorArg& sinks = ctx.in(kFlashAttnSinks);
  const TensorArg& out = ctx.out(kFlashAttnOut);
  const int64_t B = q.dims[0], Sq = q.dims[1], Hq = q.dims[2], Dk = q.dims[3];
  const int64_t Skv = k.dims[1], Hkv = k.dims[2], Dv = v.dims[3];
  if (B * Sq * Hq == 0 || Dv == 0) return absl::OkStatus();
  if (auto decode = RecordFlashAttnDecode(ctx); !decode.ok() || *decode) return decode.status();
  if (auto cm = RecordFlashAttnCoopmat(ctx); !cm.ok() || *cm) return cm.status();
  const int64_t gqa = Hq / Hkv;
  const bool generic = ctx.facts.generic_kernels;
  const int budget = generic ? 8 : RowBudget(Dk);
  int G = 1;
  for (int g = 1; g <= std::min<int64_t>(gqa, budget); ++g) {
    if (gqa % g == 0) G = g;
  }
  int QR = std::max(1, budget / G);
  while (QR > 1 && QR / 2 >= Sq) QR /= 2;
  const int BC = generic ? 16 : TileKeys(Dk);
  const int64_t head_groups = gqa / G;
  const int64_t qblocks = (Sq + QR - 1) / QR;
  const int64_t wgs = B * Hkv * head_groups * qblocks;
  // Split the keys when there are too few workgroups to fill the device.
  const bool gpu = ctx.facts.props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
  const int64_t target = gpu ? 1024 : 1;
  int64_t splits = 1;
  if (wgs < target && Skv >= 256) splits = std::min<int64_t>((target + wgs - 1) / wgs, Skv / 128);
  splits = std::max<int64_t>(1, std::min<int64_t>(splits, 256));  // flash_attn_merge.comp's limit
  int64_t per_split = (Skv + splits - 1) / splits;
  per_split = (per_split + BC - 1) / BC * BC;
  splits = std::max<int64_t>(1, (Skv + per_split - 1) / per_split);
  if (Skv == 0) per_split = 0;

  const double max_bias = ctx.node.GetFloat("max_bias");
  const double softcap = ctx.node.GetFloat("softcap");
  const std::vector<int32_t> shape = {
      static_cast<int32_t>(Dk), static_cast<int32_t>(Dv), DtCode(q.dtype()), DtCode(k.dtype()), DtCode(v.dtype()),
      mask.present() ? 1 : 0, mask.present() ? DtCode(mask.dtype()) : 0, sinks.present() ? 1 : 0, softcap > 0 ? 1 : 0,
      max_bias > 0 ? 1 : 0, ctx.node.GetBool("causal") ? 1 : 0, DtCode(out.dtype()), G, QR};
  std::vector<int32_t> spec = shape;
  if (generic) spec = {256, 256, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};  // every case reads `shape` from params
  spec.push_back(BC);
  spec.push_back(splits > 1 ? 1 : 0);
  spec.push_back(generic ? 1 : 0);
  {
    // Stage V in shared memory when it fits beside Q, K and the scores.
    const int64_t dkmax = generic ? 256 : Dk, dvmax = generic ? 256 : Dv, rmax = generic ? 8 : G * QR;
    const int64_t bytes = 4 * (rmax * dkmax + BC * dkmax + BC * dvmax + rmax * BC + 3 * rmax) + 256;
    spec.push_back(bytes <= static_cast<int64_t>(ctx.facts.props.limits.maxComputeSharedMemorySize) ? 1 : 0);
  }
  Dispatch& d = ctx.Add("flash_attn", spec, head_groups * qblocks, Hkv, B * splits);
  PushFlashAttnHeader(ctx, d, splits, per_split);
  d.U(head_groups).U(qblocks);
  while (d.params.size() < 50) d.U(0);
  for (int32_t v : shape) d.U(static_cast<uint32_t>(v));
  PushAlibiSlopes(ctx, d);
  BindFlashAttnInputs(ctx, d);
  if (splits > 1) {
    if (auto st = AddMerge(ctx, d, splits); !st.ok()) return st;
  } else {
    d.Bind(5, out);
  }
  return absl::OkStatus();
}

Support SupportsGdn(const Graph& graph, const Node& node, const DeviceFacts& facts) {
  if (node.inputs.size() < 5) return Support::No("gated_delta_net needs q, k, v, g and beta");
  for (int i : {kGdnQ, kGdnK, kGdnV}) {
    if (!IsFloatType(graph.tensors[node.inputs[i]].dtype)) return Support::No("q/k/v must be f32, f16 or bf16");
  }
  for (int i : {kGdnG, kGdnBeta, kGdnState}) {
    if (!node.has_input(i)) continue;
    if (graph.tensors[node.inputs[i]].dtype != DType::kF32) return Support::No("g, beta and state must be f32");
  }
  const int64_t K = graph.tensors[node.inputs[kGdnK]].dims[3], V = graph.tensors[node.inputs[kGdnV]].dims[3];
  if (K > 256 || V > 256) return Support::No("K or V above 256");
  const int64_t T = graph.tensors[node.inputs[kGdnQ]].dims[1];
  if (facts.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU && node.GetBool("l2norm_qk") && T > 32 &&
      !GdnChunkedFor(T, facts)) {
    // The recurrence kernels give NaN on lavapipe (Mesa 22.3) after ~10^4
    // normalized key values per head, while the H200 matches the reference
    // on the same cases; the chunked kernel takes these lengths there where
    // the device has the shuffles it needs (kernels_gdn_chunked.cc), else
    // they are declined until the lavapipe cause is found.
    return Support::No("l2norm_qk with T > 32 on a CPU Vulkan device (lavapipe NaN, see kernels_attention.cc)");
  }
  const TensorInfo& fs = graph.tensors[node.outputs[kGdnFinalState]];
  if (fs.strides.back() != 4) return Support::No("final_state rows must be contiguous");
  return Support::Yes();
}

}  // namespace

void PushGdnParams(KernelContext& ctx, Dispatch& d) {
  const TensorArg& q = ctx.in(kGdnQ);
  const TensorArg& g = ctx.in(kGdnG);
  const TensorArg& beta = ctx.in(kGdnBeta);
  const TensorArg& state = ctx.in(kGdnState);
  d.U(q.dims[0]).U(q.dims[1]).U(q.dims[2]).U(ctx.in(kGdnV).dims[2]).F(EffectiveScale(ctx.node, q.dims[3]));
  auto bthd = [&](const TensorArg& t) { d.U(t.offset).U(t.strides[0]).U(t.strides[1]).U(t.strides[2]); };
  bthd(q);
  bthd(ctx.in(kGdnK));
  bthd(ctx.in(kGdnV));
  if (g.rank == 4) {  // KDA
    bthd(g);
  } else {  // [B, T, Hv] padded to [1, B, T, Hv]
    d.U(g.offset).U(g.strides[1]).U(g.strides[2]).U(g.strides[3]);
  }
  d.U(beta.offset).U(beta.strides[1]).U(beta.strides[2]).U(beta.strides[3]);
  if (state.present()) bthd(state); else d.U(0).U(0).U(0).U(0);
  bthd(ctx.out(kGdnOut));
  bthd(ctx.out(kGdnFinalState));
  while (d.params.size() < 40) d.U(0);
}

std::vector<int32_t> GdnShapeWords(const KernelContext& ctx) {
  const TensorArg& q = ctx.in(kGdnQ);
  const TensorArg& v = ctx.in(kGdnV);
  return {static_cast<int32_t>(q.dims[3]),
          static_cast<int32_t>(v.dims[3]),
          DtCode(q.dtype()),
          DtCode(ctx.in(kGdnK).dtype()),
          DtCode(v.dtype()),
          ctx.in(kGdnG).rank == 4 ? 1 : 0,
          ctx.in(kGdnState).present() ? 1 : 0,
          ctx.node.GetBool("l2norm_qk") ? 1 : 0,
          GdnHeadMapOf(ctx.node) == GdnHeadMap::kTiled ? 1 : 0,
          DtCode(ctx.out(kGdnOut).dtype())};
}

void BindGdn(KernelContext& ctx, Dispatch& d) {
  d.Bind(0, ctx.in(kGdnQ)).Bind(1, ctx.in(kGdnK)).Bind(2, ctx.in(kGdnV)).Bind(3, ctx.in(kGdnG));
  d.Bind(4, ctx.in(kGdnBeta)).Bind(6, ctx.out(kGdnOut)).Bind(7, ctx.out(kGdnFinalState));
  if (ctx.in(kGdnState).present()) d.Bind(5, ctx.in(kGdnState));
}

namespace {

// gated_delta_net_decode.comp: few tokens on a GPU whose subgroup size is
// fixed (the kernel's lanes split K across a subgroup's lanes by shuffles).
// False (nothing recorded) where gated_delta_net.comp takes the node.
// KILN_VULKAN_GDN_DECODE=0 turns it off (for measuring).
absl::StatusOr<bool> RecordGdnDecode(KernelContext& ctx) {
  const int64_t B = ctx.in(kGdnQ).dims[0], T = ctx.in(kGdnQ).dims[1], K = ctx.in(kGdnQ).dims[3];
  const int64_t Hv = ctx.in(kGdnV).dims[2], V = ctx.in(kGdnV).dims[3];
  const DeviceFacts& f = ctx.facts;
  const int64_t sg = f.subgroup_size;
  // Specialized builds only (CPU devices too when asked: the CI's check).
  if (f.generic_kernels || !f.subgroup_shuffle) return false;
  if (f.min_subgroup != f.max_subgroup || sg < 8 || sg > 64 || (sg & (sg - 1))) return false;
  if (T > 8 || EnvInt("KILN_VULKAN_GDN_DECODE", 1) == 0) return false;
  // 8 columns per subgroup (a 32-byte sector per row and load); K = 256:
  // 4, so that a lane of 32 keeps K / 8 rows (registers).
  // KILN_VULKAN_GDN_CPS (a power of 2 up to the subgroup size, with at most
  // 64 rows per lane) and _SGS override both (tuning).
  int64_t cps = std::min<int64_t>(K <= 128 ? 8 : 4, sg);
  if (const int64_t c = EnvInt("KILN_VULKAN_GDN_CPS", 0); c > 0 && c <= sg && (c & (c - 1)) == 0 && K * c / sg <= 64) cps = c;
  const int64_t sgs = std::clamp<int64_t>(EnvInt("KILN_VULKAN_GDN_SGS", 2), 1, 8);  // subgroups per workgroup (H200: 1 and 4 were 3-4% slower)
  const int64_t subgroups = Hv * ((V + cps - 1) / cps);
  std::vector<int32_t> spec = {static_cast<int32_t>(sg * sgs), static_cast<int32_t>(sg), static_cast<int32_t>(cps)};
  for (int32_t w : GdnShapeWords(ctx)) spec.push_back(w);  // constants 3..12
  Dispatch& d = ctx.Add("gated_delta_net_decode", spec, (subgroups + sgs - 1) / sgs, B);
  PushGdnParams(ctx, d);
  BindGdn(ctx, d);
  return true;
}

absl::Status RecordGdn(KernelContext& ctx) {
  const TensorArg& q = ctx.in(kGdnQ);
  const TensorArg& v = ctx.in(kGdnV);
  const int64_t B = q.dims[0], T = q.dims[1], K = q.dims[3];
  const int64_t Hv = v.dims[2], V = v.dims[3];
  if (B * Hv == 0) return absl::OkStatus();
  if (auto chunked = RecordGdnChunked(ctx); !chunked.ok() || *chunked) return chunked.status();
  if (auto decode = RecordGdnDecode(ctx); !decode.ok() || *decode) return decode.status();
  // Invocation (j, part) holds rows part*K/kp.. of state column j. On a CPU
  // device (lavapipe) every barrier switches all invocations: one per
  // column there.
  int kp = 1;
  const bool cpu = ctx.facts.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  const bool generic = ctx.facts.generic_kernels;
  // GPUs: 32 columns per workgroup (V / 32 workgroups per head), 16 for
  // decode (more workgroups than 132 SMs at H = 32), up to 512 invocations.
  const int64_t cols = !cpu && !generic ? std::min<int64_t>(V, T <= 8 ? 16 : 32) : V;
  while (!cpu && kp * 2 <= K && cols * kp * 2 <= 512) kp *= 2;
  const int wg = generic ? 256 : static_cast<int>(cols * kp);
  const int64_t cblocks = (V + cols - 1) / cols;
  const std::vector<int32_t> shape = GdnShapeWords(ctx);
  std::vector<int32_t> spec(shape.begin(), shape.begin() + 9);  // constants 0..8
  if (generic) {
    spec = {256, 256, 0, 0, 0, 0, 0, 0, 0};
    kp = 1;
  }
  spec.push_back(kp);
  spec.push_back(generic ? 0 : shape[9]);  // the out dtype
  spec.push_back(wg);
  spec.push_back(generic ? 1 : 0);
  spec.push_back(cols == V ? 0 : static_cast<int32_t>(cols));
  // CPU devices: one invocation per state column, no barriers.
  Dispatch& d = generic && ctx.facts.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU
                    ? ctx.Add("gated_delta_net_columns", {}, (B * Hv * V + 31) / 32)
                    : ctx.Add("gated_delta_net", spec, Hv * cblocks, B);
  PushGdnParams(ctx, d);
  for (int32_t w : shape) d.U(static_cast<uint32_t>(w));  // words 40..49
  BindGdn(ctx, d);
  return absl::OkStatus();
}

}  // namespace

void RegisterAttentionKernels(std::vector<VkKernelEntry>& k) {
  k.push_back({"flash_attn", SupportsFlashAttn, RecordFlashAttn});
  k.push_back({"gated_delta_net", SupportsGdn, RecordGdn});
}

}  // namespace kiln::vk
