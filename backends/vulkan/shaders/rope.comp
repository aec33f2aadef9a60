#version 450
// Rotary embedding of x [B, T, H, D]: one invocation per rotated pair or
// copied element. The angle p * inv_freq is formed and reduced modulo pi/2
// in double precision (positions reach 1e5: an f32 angle would be off by
// 1e-3), then sin/cos by minimax polynomials on [-pi/4, pi/4].
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int DTX = 0;
layout(constant_id = 1) const int INTERLEAVED = 0;
layout(constant_id = 2) const int POS2D = 0;
DECLARE_SLOT(0, X)
DECLARE_SLOT(1, Pos)
DECLARE_SLOT(2, O)
// params: 1 rows (B*T*H), 2..5 dims, 6 x T, 11 out T, 16 pos off, 17 pos s_b, 18 pos s_t,
//         19 rotary dim, 20.. inv_freq as doubles (lo, hi words)
void SinCos(uint p, uint i, out float s, out float c) {
  const double f = packDouble2x32(uvec2(P(20 + 2 * i), P(21 + 2 * i)));
  const double ang = double(p) * f;
  const double q = floor(ang * 0.63661977236758134308LF + 0.5LF);  // nearest multiple of pi/2
  const float r = float(ang - q * 1.5707963267948966192LF);
  const int quad = int(q - 4.0LF * floor(q * 0.25LF));
  const float z = r * r;
  const float sn = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  const float cs = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  if (quad == 0) { s = sn; c = cs; }
  else if (quad == 1) { s = cs; c = -sn; }
  else if (quad == 2) { s = -sn; c = -cs; }
  else { s = -cs; c = sn; }
}
void main() {
  const uvec4 d = PDims(2);
  const uint D = d.w, rd = P(19), half_ = rd / 2u;
  const uint per_row = half_ + (D - rd);
  const uint n = P(1) * per_row;
  const uint stride = gl_NumWorkGroups.x * 256u;
  for (uint i = gl_WorkGroupID.x * 256u + gl_LocalInvocationID.x; i < n; i += stride) {
    const uint row = i / per_row, j = i % per_row;
    const uvec4 idx = Unflatten(row, uvec4(d.x, d.y, d.z, 1u));
    const uint xo = TOffset(6, idx), xs = P(10);
    const uint oo = TOffset(11, idx), os = P(15);
    if (j >= half_) {
      const uint e = rd + (j - half_);
      STOREF(O, DTX, oo + e * os, LOADF(X, DTX, xo + e * xs));
      continue;
    }
    const uint po = P(16) + (POS2D != 0 ? idx.x * P(17) : 0u) + idx.y * P(18);
    const int p = int(Pos_u[po]);
    float s, c;
    // Negative positions: sin(-a) = -sin(a).
    SinCos(uint(abs(p)), j, s, c);
    if (p < 0) s = -s;
    const uint a = INTERLEAVED != 0 ? 2u * j : j;
    const uint b = INTERLEAVED != 0 ? 2u * j + 1u : j + half_;
    const float xa = LOADF(X, DTX, xo + a * xs), xb = LOADF(X, DTX, xo + b * xs);
    STOREF(O, DTX, oo + a * os, xa * c - xb * s);
    STOREF(O, DTX, oo + b * os, xa * s + xb * c);
  }
}
