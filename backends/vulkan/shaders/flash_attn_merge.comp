#version 450
// Combines the split-KV partials (m, l, acc) of flash_attn.comp and
// flash_attn_decode.comp per (b, h, i) row; sinks join here. The split
// weights exp(m_s - M) are computed once into shared memory, then each
// invocation sums its output elements over the splits (coalesced reads).
#include "common.glsl"
#define NINF uintBitsToFloat(0xff800000u)
layout(local_size_x = 128) in;
layout(constant_id = 0) const int DV = 128;
layout(constant_id = 1) const int HAS_SINKS = 0;
layout(constant_id = 2) const int DTO = 0;
DECLARE_SLOT(0, Part)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)
const uint MAX_SPLITS = 256u;  // kernels_attention.cc keeps splits within this
shared float w_s[MAX_SPLITS];
shared float red[128];
// params: 1 B, 2 Sq, 3 Hq, 4 splits, 5 out T, 10 sinks off
void main() {
  const uint Sq = P(2), Hq = P(3), NS = P(4);
  const uint row = gl_WorkGroupID.x;  // (b * Hq + h) * Sq + i
  const uint i = row % Sq, h = (row / Sq) % Hq, b = row / (Sq * Hq);
  const uint t = gl_LocalInvocationID.x;
  const uint rec = uint(DV + 2);
  const uint base = row * NS * rec;
  // M = max over the splits' m (and the sink).
  float mx = NINF;
  for (uint s = t; s < NS; s += 128u) mx = max(mx, Part_f[base + s * rec]);
  red[t] = mx;
  barrier();
  for (uint w = 64u; w > 0u; w >>= 1) {
    if (t < w) red[t] = max(red[t], red[t + w]);
    barrier();
  }
  float M = red[0];
  float sink = NINF;
  if (HAS_SINKS != 0) { sink = Sk_f[P(10) + h]; M = max(M, sink); }
  barrier();
  // Weights and L = sum l_s * w_s (+ the sink's exp).
  float lsum = 0.0;
  for (uint s = t; s < NS; s += 128u) {
    const float m = Part_f[base + s * rec];
    const float w = m == NINF ? 0.0 : exp(m - M);
    w_s[s] = w;
    if (w != 0.0) lsum += Part_f[base + s * rec + 1u] * w;
  }
  red[t] = lsum;
  barrier();
  for (uint w = 64u; w > 0u; w >>= 1) {
    if (t < w) red[t] += red[t + w];
    barrier();
  }
  const float L = red[0] + (HAS_SINKS != 0 && M != NINF ? exp(sink - M) : 0.0);
  for (uint d = t; d < uint(DV); d += 128u) {
    float v = 0.0;
    for (uint s = 0; s < NS; ++s) {
      const float w = w_s[s];
      if (w != 0.0) v += Part_f[base + s * rec + 2u + d] * w;
    }
    const float res = L == 0.0 ? 0.0 : v / L;
    const uint o = P(5) + b * P(6) + i * P(7) + h * P(8) + d;
    STOREF(O, DTO, o, res);
  }
}
