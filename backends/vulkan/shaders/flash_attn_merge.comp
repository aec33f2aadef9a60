#version 450
// Combines the split-KV partials (m, l, acc) of flash_attn.comp and
// flash_attn_decode.comp per (b, h, i) row; sinks join here. One workgroup
// per (row, block of DCH output elements): the split weights exp(m_s - M)
// go once into shared memory, then SGR groups of invocations each sum every
// SGR-th split for the block's elements (loads issued unconditionally, so
// that many are in flight; a split of weight 0 adds 0, its values unused)
// and the groups' sums are added through shared memory.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"
#define NINF uintBitsToFloat(0xff800000u)
const int DCH = 32;  // output elements per workgroup
const int SGR = 8;   // split groups
const int PRE = 8;   // values per invocation loaded up front
layout(local_size_x = 256) in;  // DCH * SGR
layout(constant_id = 0) const int DV = 128;
layout(constant_id = 1) const int HAS_SINKS = 0;
layout(constant_id = 2) const int DTO = 0;
DECLARE_SLOT_RO(0, Part)
DECLARE_SLOT_RO(4, Sk)
DECLARE_SLOT(5, O)
const uint MAX_SPLITS = 256u;  // kernels_attention.cc keeps splits within this
shared float w_s[MAX_SPLITS];
shared float red[256];
shared float sums[SGR * DCH];

// The workgroup's max or sum of v: each subgroup's, then those of all
// subgroups from shared memory (two barriers, not a tree of eight).
float WgReduce(float v, bool sum) {
  v = sum ? subgroupAdd(v) : subgroupMax(v);
  if (subgroupElect()) red[gl_SubgroupID] = v;
  barrier();
  float r = sum ? 0.0 : NINF;
  for (uint s = 0u; s < gl_NumSubgroups; ++s) r = sum ? r + red[s] : max(r, red[s]);
  barrier();
  return r;
}

// A split's value times its weight; 0 for a split of weight 0, whatever
// its (never written) value holds.
float Weighted(float x, float w) { return w != 0.0 ? x * w : 0.0; }

// params: 1 B, 2 Sq, 3 Hq, 4 splits, 5 out T, 10 sinks off
void main() {
  const uint Sq = P(2), Hq = P(3), NS = P(4);
  const uint row = gl_WorkGroupID.x;  // (b * Hq + h) * Sq + i
  const uint i = row % Sq, h = (row / Sq) % Hq, b = row / (Sq * Hq);
  const uint t = gl_LocalInvocationID.x;
  const uint rec = uint(DV + 2);
  const uint base = row * NS * rec;
  const uint dl = t % uint(DCH), g = t / uint(DCH);
  const uint d = gl_WorkGroupID.y * uint(DCH) + dl;
  const uint dc = min(d, uint(DV) - 1u);  // past DV: read in range, not stored
  // The first PRE of this invocation's splits' values loaded now, with the
  // m and l below: one memory round trip, not two, for up to SGR * PRE
  // splits. (A dead split's values were never written: its weight 0
  // selects them away below.)
  float xs[PRE];
  [[unroll]] for (int k = 0; k < PRE; ++k) {
    const uint s = g + uint(k * SGR);
    xs[k] = s < NS ? Part_f[base + s * rec + 2u + dc] : 0.0;
  }
  // M = max over the splits' m (and the sink); NS <= 256: one split each.
  const float ms = t < NS ? Part_f[base + t * rec] : NINF;
  const float ls = t < NS ? Part_f[base + t * rec + 1u] : 0.0;
  float M = WgReduce(ms, false);
  float sink = NINF;
  if (HAS_SINKS != 0) { sink = Sk_f[P(10) + h]; M = max(M, sink); }
  const float w = ms == NINF ? 0.0 : exp(ms - M);
  if (t < NS) w_s[t] = w;
  const float L = WgReduce(w != 0.0 ? ls * w : 0.0, true) + (HAS_SINKS != 0 && M != NINF ? exp(sink - M) : 0.0);
  // w_s is visible: WgReduce ends with a barrier.
  float v = 0.0;
  [[unroll]] for (int k = 0; k < PRE; ++k) {
    const uint s = g + uint(k * SGR);
    if (s < NS) v += Weighted(xs[k], w_s[s]);
  }
  for (uint s = g + uint(PRE * SGR); s < NS; s += uint(SGR)) v += Weighted(Part_f[base + s * rec + 2u + dc], w_s[s]);
  sums[g * uint(DCH) + dl] = v;
  barrier();
  if (g != 0u || d >= uint(DV)) return;
  for (int k = 1; k < SGR; ++k) v += sums[uint(k * DCH) + dl];
  const float res = L == 0.0 ? 0.0 : v / L;
  const uint o = P(5) + b * P(6) + i * P(7) + h * P(8) + d;
  STOREF(O, DTO, o, res);
}
