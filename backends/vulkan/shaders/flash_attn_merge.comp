#version 450
// Combines the split-KV partials (m, l, acc) of flash_attn.comp per
// (b, h, i) row; sinks join here.
#include "common.glsl"
#define NINF uintBitsToFloat(0xff800000u)
layout(local_size_x = 128) in;
layout(constant_id = 0) const int DV = 128;
layout(constant_id = 1) const int HAS_SINKS = 0;
layout(constant_id = 2) const int DTO = 0;
DECLARE_SLOT(0, Part)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)
// params: 1 B, 2 Sq, 3 Hq, 4 splits, 5 out T, 10 sinks off
void main() {
  const uint Sq = P(2), Hq = P(3), NS = P(4);
  const uint row = gl_WorkGroupID.x;  // (b * Hq + h) * Sq + i
  const uint i = row % Sq, h = (row / Sq) % Hq, b = row / (Sq * Hq);
  #define NINF uintBitsToFloat(0xff800000u)
  const uint base = row * NS * uint(DV + 2);
  float M = NINF;
  for (uint s = 0; s < NS; ++s) M = max(M, Part_f[base + s * uint(DV + 2)]);
  float sink = NINF;
  if (HAS_SINKS != 0) { sink = Sk_f[P(10) + h]; M = max(M, sink); }
  float L = HAS_SINKS != 0 ? exp(sink - M) : 0.0;
  for (uint s = 0; s < NS; ++s) {
    const float m = Part_f[base + s * uint(DV + 2)];
    if (m != NINF) L += Part_f[base + s * uint(DV + 2) + 1u] * exp(m - M);
  }
  for (uint d = gl_LocalInvocationID.x; d < uint(DV); d += 128u) {
    float v = 0.0;
    for (uint s = 0; s < NS; ++s) {
      const float m = Part_f[base + s * uint(DV + 2)];
      if (m != NINF) v += Part_f[base + s * uint(DV + 2) + 2u + d] * exp(m - M);
    }
    const float res = L == 0.0 ? 0.0 : v / L;
    const uint o = P(5) + b * P(6) + i * P(7) + h * P(8) + d;
    STOREF(O, DTO, o, res);
  }
}
