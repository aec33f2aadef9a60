// gated_delta_net for long T: the chunked kernel (gated_delta_net_chunked.comp)
// beside the fused recurrence of kernels_attention.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/vulkan/vk_kernels.h"

namespace kiln::vk {

// Whether nodes of T tokens go to the chunked kernel on this device
// (shapes aside: it takes every K, V <= 256 and both gates).
bool GdnChunkedFor(int64_t T, const DeviceFacts& facts);

// Records the chunked kernel when it handles the node (true), else nothing
// (false: the caller records the recurrence).
absl::StatusOr<bool> RecordGdnChunked(KernelContext& ctx);

// The parameter words both GDN kernels read (shape, scale, q/k/v/g/beta/
// state/out/final-state offsets and strides), up to word 40.
void PushGdnParams(KernelContext& ctx, Dispatch& d);

// Words 40..49 (what a generic build reads; a specialized one takes them as
// specialization constants): K, V, q/k/v dtypes, KDA, state present,
// l2norm_qk, tiled head map, out dtype.
std::vector<int32_t> GdnShapeWords(const KernelContext& ctx);

// Bindings 0-7 of every GDN kernel: q, k, v, g, beta, state (when present),
// out, final state.
void BindGdn(KernelContext& ctx, Dispatch& d);

}  // namespace kiln::vk
