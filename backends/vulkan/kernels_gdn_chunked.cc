// The chunked gated_delta_net dispatch: which nodes it takes, and its grid.
#include "backends/vulkan/kernels_gdn_chunked.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "ops/gated_delta_net.h"

namespace kiln::vk {

// Tokens from which the chunked kernel replaces the recurrence: measured on
// the H200 (bench/RESULTS.md). CPU devices (lavapipe) from 33 tokens: the
// recurrence gives NaN there on longer l2norm_qk cases (kernels_attention.cc),
// the chunked kernel does not.
constexpr int64_t kGdnChunkedMinT = 128;
constexpr int64_t kGdnChunkedMinTCpu = 33;

bool GdnChunkedFor(int64_t T, const DeviceFacts& facts) {
  if (const char* env = std::getenv("KILN_VULKAN_GDN"); env && std::string(env) == "recurrent") return false;
  // A column's 8 parts combine by shuffles, in one subgroup.
  const bool shuffles = facts.subgroup_shuffle && facts.subgroup_size > 0 && facts.subgroup_size % 8 == 0;
  const bool cpu = facts.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  return T >= (cpu ? kGdnChunkedMinTCpu : kGdnChunkedMinT) && shuffles;
}

absl::StatusOr<bool> RecordGdnChunked(KernelContext& ctx) {
  const TensorArg& q = ctx.in(kGdnQ);
  const TensorArg& v = ctx.in(kGdnV);
  const int64_t B = q.dims[0], T = q.dims[1];
  const int64_t Hv = v.dims[2], V = v.dims[3];
  if (!GdnChunkedFor(T, ctx.facts) || B * Hv == 0) return false;
  const bool generic = ctx.facts.generic_kernels;
  // 32 state columns per workgroup (16, twice the workgroups, was slower on the H200).
  const int64_t vb = generic ? 32 : std::min<int64_t>(V, 32);
  const int64_t cblocks = (V + vb - 1) / vb;
  const std::vector<int32_t> shape = GdnShapeWords(ctx);
  // Spec: WG, K, V, q/k/v dtypes, state, l2norm, tiled, out dtype, VB, KDA, GENERIC.
  std::vector<int32_t> spec = {static_cast<int32_t>(vb * 8), shape[0], shape[1], shape[2], shape[3], shape[4],
                               shape[6], shape[7], shape[8], shape[9], static_cast<int32_t>(vb), shape[5], 0};
  if (generic) spec = {256, 256, 256, 0, 0, 0, 0, 0, 0, 0, 32, 0, 1};  // every case reads `shape` from params
  Dispatch& d = ctx.Add("gated_delta_net_chunked", spec, Hv * cblocks, B);
  PushGdnParams(ctx, d);
  for (int32_t w : shape) d.U(static_cast<uint32_t>(w));  // words 40..49
  BindGdn(ctx, d);
  return true;
}

}  // namespace kiln::vk
