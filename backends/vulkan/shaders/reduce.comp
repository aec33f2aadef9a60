#version 450
// sum / mean / max over one axis: one invocation per output element
// (compensated sum; max propagates NaN).
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int KIND = 0;  // 0 sum, 1 mean, 2 max
layout(constant_id = 1) const int DTX = 0;
DECLARE_SLOT(0, X)
DECLARE_SLOT(1, O)
// params: 1 n out, 2..5 dims (axis dim = 1), 6 x T, 11 axis length, 12 axis stride, 13 out off
void main() {
  const uint n = P(1);
  const uvec4 d = PDims(2);
  const uint len = P(11), as = P(12);
  const uint stride = gl_NumWorkGroups.x * 256u;
  for (uint i = gl_WorkGroupID.x * 256u + gl_LocalInvocationID.x; i < n; i += stride) {
    const uint xo = TOffset(6, Unflatten(i, d));
    float sum = 0.0, comp = 0.0, mx = uintBitsToFloat(0xff800000u);
    bool nan_seen = false;
    for (uint k = 0; k < len; ++k) {
      const float v = LOADF(X, DTX, xo + k * as);
      const float y = v - comp;
      const float t = sum + y;
      comp = isinf(t) ? 0.0 : (t - sum) - y;
      sum = t;
      if (isnan(v)) nan_seen = true; else mx = max(mx, v);
    }
    float r = KIND == 2 ? (nan_seen ? uintBitsToFloat(0x7fc00000u) : mx) : KIND == 1 ? sum / float(len) : sum;
    if (KIND != 2 && nan_seen) r = uintBitsToFloat(0x7fc00000u);
    STOREF(O, DTX, P(13) + i, r);
  }
}
