#version 450
// Gated delta rule for CPU devices (lavapipe): one invocation per state
// column (b, hv, j) holds S[:, j] in registers and walks the tokens. The
// column update needs no other column (u_j and o_j are sums over i), so
// there is no shared memory and no barrier; the q/k l2 norms are summed by
// each invocation. Shapes and flags are parameters (gated_delta_net.comp's
// layout).
#include "common.glsl"
layout(local_size_x = 32) in;
DECLARE_SLOT(0, Qb)
DECLARE_SLOT(1, Kb)
DECLARE_SLOT(2, Vb)
DECLARE_SLOT(3, Gb)
DECLARE_SLOT(4, Bt)
DECLARE_SLOT(5, St)
DECLARE_SLOT(6, O)
DECLARE_SLOT(7, Fs)

float NormScale(int dt, bool is_q, uint o, int n) {
  float mx = 0.0;
  for (int e = 0; e < n; ++e) mx = max(mx, abs(is_q ? LOADF(Qb, dt, o + uint(e)) : LOADF(Kb, dt, o + uint(e))));
  if (mx == 0.0) return 1000.0;  // 1 / sqrt(0 + 1e-6)
  float s = 0.0;
  for (int e = 0; e < n; ++e) {
    const float x = (is_q ? LOADF(Qb, dt, o + uint(e)) : LOADF(Kb, dt, o + uint(e))) / mx;
    s += x * x;
  }
  return 1.0 / (mx * sqrt(s + 1e-6 / (mx * mx)));
}

void main() {
  const uint B = P(1), T = P(2), Hk = P(3), Hv = P(4);
  const int Kd = int(P(40)), Vd = int(P(41));
  const int dtq = int(P(42)), dtk = int(P(43)), dtv = int(P(44)), dto = int(P(49));
  const bool kda = P(45) != 0u, has_state = P(46) != 0u, l2 = P(47) != 0u, tiled = P(48) != 0u;
  const uint col = gl_WorkGroupID.x * 32u + gl_LocalInvocationID.x;
  if (col >= B * Hv * uint(Vd)) return;
  const uint j = col % uint(Vd), hv = (col / uint(Vd)) % Hv, b = col / (uint(Vd) * Hv);
  const uint kh = tiled ? hv % Hk : hv / (Hv / Hk);
  const float scale = PF(5);
  float s[256];
  for (int i = 0; i < Kd; ++i) {
    s[i] = has_state ? St_f[P(26) + b * P(27) + hv * P(28) + uint(i) * P(29) + j] : 0.0;
  }
  for (uint t = 0; t < T; ++t) {
    const uint qo = P(6) + b * P(7) + t * P(8) + kh * P(9);
    const uint ko = P(10) + b * P(11) + t * P(12) + kh * P(13);
    const float qn = l2 ? NormScale(dtq, true, qo, Kd) : 1.0;
    const float kn = l2 ? NormScale(dtk, false, ko, Kd) : 1.0;
    const uint go = P(18) + b * P(19) + t * P(20) + hv * P(21);
    const float decay = kda ? 1.0 : exp(Gb_f[go]);
    float u = 0.0;
    for (int i = 0; i < Kd; ++i) {
      s[i] *= kda ? exp(Gb_f[go + uint(i)]) : decay;
      u += s[i] * LOADF(Kb, dtk, ko + uint(i)) * kn;
    }
    const float beta = Bt_f[P(22) + b * P(23) + t * P(24) + hv * P(25)];
    const float v = LOADF(Vb, dtv, P(14) + b * P(15) + t * P(16) + hv * P(17) + j);
    const float dlt = beta * (v - u);
    float o = 0.0;
    for (int i = 0; i < Kd; ++i) {
      s[i] += LOADF(Kb, dtk, ko + uint(i)) * kn * dlt;
      o += s[i] * LOADF(Qb, dtq, qo + uint(i)) * qn;
    }
    STOREF(O, dto, P(30) + b * P(31) + t * P(32) + hv * P(33) + j, scale * o);
  }
  for (int i = 0; i < Kd; ++i) Fs_f[P(34) + b * P(35) + hv * P(36) + uint(i) * P(37) + j] = s[i];
}
