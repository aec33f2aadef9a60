#version 450
// rms_norm / layer_norm / l2_norm over the last axis: one workgroup per row.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int KIND = 0;  // 0 rms, 1 layer, 2 l2
layout(constant_id = 1) const int DTX = 0;
layout(constant_id = 2) const int DTO = 0;
layout(constant_id = 3) const int HAS_W = 0;
layout(constant_id = 4) const int DTW = 0;
layout(constant_id = 5) const int HAS_B = 0;
layout(constant_id = 6) const int DTB = 0;
DECLARE_SLOT(0, X)
DECLARE_SLOT(1, W)
DECLARE_SLOT(2, Bb)
DECLARE_SLOT(3, O)
#include "reduce_util.glsl"
// params: 1 rows, 2..5 dims, 6 x T, 11 out T, 16 eps, 17 w off, 18 b off
void main() {
  const uint rows = P(1);
  const uvec4 d = PDims(2);
  const uint C = d.w;
  const uvec4 rd = uvec4(d.x, d.y, d.z, 1u);
  for (uint row = gl_WorkGroupID.x; row < rows; row += gl_NumWorkGroups.x) {
    const uvec4 idx = Unflatten(row, rd);
    const uint xo = TOffset(6, idx), xs = P(10);
    const uint oo = TOffset(11, idx), os = P(15);
    float mean = 0.0;
    if (KIND == 1) {
      float s = 0.0;
      for (uint c = gl_LocalInvocationID.x; c < C; c += 256u) s += LOADF(X, DTX, xo + c * xs);
      mean = WgSum(s) / float(C);
    }
    float ss = 0.0;
    for (uint c = gl_LocalInvocationID.x; c < C; c += 256u) {
      const float v = LOADF(X, DTX, xo + c * xs) - mean;
      ss += v * v;
    }
    ss = WgSum(ss);
    const float denom = KIND == 2 ? ss : ss / float(C);
    const float r = 1.0 / sqrt(denom + PF(16));
    for (uint c = gl_LocalInvocationID.x; c < C; c += 256u) {
      float v = (LOADF(X, DTX, xo + c * xs) - mean) * r;
      if (HAS_W != 0) v *= LOADF(W, DTW, P(17) + c);
      if (HAS_B != 0) v += LOADF(Bb, DTB, P(18) + c);
      STOREF(O, DTO, oo + c * os, v);
    }
  }
}
