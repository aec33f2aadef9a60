#version 450
// A same-dtype copy of whole 16-byte vectors between contiguous tensors
// (contiguous, reshape, cast to the same dtype): the device's copy at
// memory speed, and what kiln_vk_bench measures the copy bandwidth with.
// Each invocation moves UNROLL vectors per pass, their loads issued before
// their stores.
#include "common.glsl"
layout(local_size_x = 256) in;
const uint UNROLL = 4u;
DECLARE_SLOT(0, A)
DECLARE_SLOT(2, O)
// params: 1 vectors, 2 source vector offset, 3 destination vector offset
void main() {
  const uint n = P(1), src = P(2), dst = P(3);
  const uint stride = gl_NumWorkGroups.x * 256u;
  uint i = gl_WorkGroupID.x * 256u * UNROLL + gl_LocalInvocationID.x;
  for (; i + (UNROLL - 1u) * 256u < n; i += stride * UNROLL) {
    uvec4 v[UNROLL];
    for (uint u = 0u; u < UNROLL; ++u) v[u] = A_v4[src + i + u * 256u];
    for (uint u = 0u; u < UNROLL; ++u) O_v4[dst + i + u * 256u] = v[u];
  }
  for (; i < n; i += 256u) O_v4[dst + i] = A_v4[src + i];
}
