#version 450
// Flash attention for CPU devices (lavapipe): one invocation per query row
// walks the keys in order with the online softmax in registers; no shared
// memory and no barriers, which is what a CPU runs fast. A masked key
// (mask -inf or causal) is skipped before its K/V is read. Shapes, dtypes
// and flags are parameters (the layout of flash_attn.comp's params).
#include "common.glsl"
layout(local_size_x = 32) in;
DECLARE_SLOT(0, Q)
DECLARE_SLOT(1, K)
DECLARE_SLOT(2, V)
DECLARE_SLOT(3, Mk)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)
#define NINF uintBitsToFloat(0xff800000u)

float LoadKV(int dt, bool is_k, uint row_off, uint d) {
  if (dt == DT_Q8) return is_k ? LOADQ8(K, row_off, d) : LOADQ8(V, row_off, d);
  return is_k ? LOADF(K, dt, row_off + d) : LOADF(V, dt, row_off + d);
}

void main() {
  const uint B = P(1), Sq = P(2), Skv = P(3), Hq = P(4), Hkv = P(5);
  const uint row = gl_WorkGroupID.x * 32u + gl_LocalInvocationID.x;
  if (row >= B * Hq * Sq) return;
  const uint i = row % Sq, h = (row / Sq) % Hq, b = row / (Sq * Hq);
  const uint kvh = h / (Hq / Hkv);
  const int Dk = int(P(50)), Dv = int(P(51));
  const int dtq = int(P(52)), dtk = int(P(53)), dtv = int(P(54)), dtm = int(P(56)), dto = int(P(61));
  const bool has_mask = P(55) != 0u, has_sinks = P(57) != 0u, softcap_on = P(58) != 0u;
  const bool alibi = P(59) != 0u, causal = P(60) != 0u;
  const float scale = PF(6), softcap = PF(7);
  const float slope = alibi ? PF(64u + h) : 1.0;
  float q[256];
  float acc[256];
  const uint qo = P(13) + b * P(14) + i * P(15) + h * P(16);
  for (int d = 0; d < Dk; ++d) q[d] = LOADF(Q, dtq, qo + uint(d));
  for (int d = 0; d < Dv; ++d) acc[d] = 0.0;
  float m = NINF, l = 0.0;
  const uint mo = P(28) + b * P(29) + h * P(30) + i * P(31);
  for (uint j = 0; j < Skv; ++j) {
    if (causal && j > i + (Skv - Sq)) break;  // every later key is masked too
    float bias = 0.0;
    if (has_mask) {
      const float mv = LOADF(Mk, dtm, mo + j * P(32));
      if (mv == NINF) continue;
      bias = slope * mv;
    }
    const uint ko = P(18) + b * P(19) + j * P(20) + kvh * P(21);
    float s = 0.0;
    for (int d = 0; d < Dk; ++d) s += q[d] * LoadKV(dtk, true, ko, uint(d));
    s *= scale;
    if (softcap_on) s = softcap * tanh(s / softcap);
    s += bias;
    if (s > m) {
      const float alpha = m == NINF ? 0.0 : exp(m - s);
      for (int d = 0; d < Dv; ++d) acc[d] *= alpha;
      l *= alpha;
      m = s;
    }
    const float p = exp(s - m);
    l += p;
    const uint vo = P(23) + b * P(24) + j * P(25) + kvh * P(26);
    for (int d = 0; d < Dv; ++d) acc[d] += p * LoadKV(dtv, false, vo, uint(d));
  }
  float f = 1.0;
  if (has_sinks) {
    const float sink = Sk_f[P(38) + h];
    const float M = max(m, sink);
    f = m == NINF ? 0.0 : exp(m - M);
    l = l * f + exp(sink - M);
  }
  const uint oo = P(33) + b * P(34) + i * P(35) + h * P(36);
  for (int d = 0; d < Dv; ++d) {
    const float res = l == 0.0 ? 0.0 : acc[d] * f / l;
    STOREF(O, dto, oo + uint(d), res);
  }
}
