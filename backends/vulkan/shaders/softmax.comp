#version 450
// softmax(scale * x + mask) over the last axis, one workgroup per row; a row
// of all -inf gives zeros, a NaN logit makes the row NaN.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int DTX = 0;
layout(constant_id = 1) const int DTO = 0;
layout(constant_id = 2) const int HAS_MASK = 0;
layout(constant_id = 3) const int DTM = 0;
DECLARE_SLOT(0, X)
DECLARE_SLOT(1, Mk)
DECLARE_SLOT(2, O)
#include "reduce_util.glsl"
// params: 1 rows, 2..5 dims, 6 x T, 11 mask T (broadcast strides), 16 out T, 21 scale
float Logit(uint xo, uint xs, uint mo, uint ms, uint c) {
  float s = PF(21) * LOADF(X, DTX, xo + c * xs);
  if (HAS_MASK != 0) s += LOADF(Mk, DTM, mo + c * ms);
  return s;
}
void main() {
  const uint rows = P(1);
  const uvec4 d = PDims(2);
  const uint C = d.w;
  const uvec4 rd = uvec4(d.x, d.y, d.z, 1u);
  const float NINF = uintBitsToFloat(0xff800000u);
  for (uint row = gl_WorkGroupID.x; row < rows; row += gl_NumWorkGroups.x) {
    const uvec4 idx = Unflatten(row, rd);
    const uint xo = TOffset(6, idx), xs = P(10);
    const uint mo = HAS_MASK != 0 ? TOffset(11, idx) : 0u, ms = P(15);
    const uint oo = TOffset(16, idx), os = P(20);
    float mx = NINF, nan_seen = 0.0;
    for (uint c = gl_LocalInvocationID.x; c < C; c += 256u) {
      const float s = Logit(xo, xs, mo, ms, c);
      if (isnan(s)) nan_seen = 1.0; else mx = max(mx, s);
    }
    mx = WgMax(mx);
    const bool row_nan = WgMax(nan_seen) > 0.0;
    const bool all_masked = !row_nan && mx == NINF;
    float den = 0.0;
    if (!all_masked) {
      for (uint c = gl_LocalInvocationID.x; c < C; c += 256u) den += exp(Logit(xo, xs, mo, ms, c) - mx);
    }
    den = WgSum(den);
    for (uint c = gl_LocalInvocationID.x; c < C; c += 256u) {
      float v;
      if (row_nan) v = uintBitsToFloat(0x7fc00000u);
      else if (all_masked) v = 0.0;
      else v = exp(Logit(xo, xs, mo, ms, c) - mx) / den;
      STOREF(O, DTO, oo + c * os, v);
    }
  }
}
