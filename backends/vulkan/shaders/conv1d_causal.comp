#version 450
// Depthwise causal conv1d with carried state: one invocation per (b, c)
// walks T with the last K-1 inputs in registers. It reads its state
// column before writing new_state, so the two may alias.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(constant_id = 0) const int DTX = 0;
layout(constant_id = 1) const int DTW = 0;
layout(constant_id = 2) const int DTS = 0;   // state (input)
layout(constant_id = 3) const int DTNS = 0;  // new_state
layout(constant_id = 4) const int HAS_STATE = 0;
layout(constant_id = 5) const int SILU = 0;
layout(constant_id = 6) const int KMAX = 16;
DECLARE_SLOT(0, X)
DECLARE_SLOT(1, W)
DECLARE_SLOT(2, S)
DECLARE_SLOT(3, O)
DECLARE_SLOT(4, NS)
// params: 1 B, 2 T, 3 C, 4 K; x (5: off, s_b, s_t), w (8: off, s_c, s_k), state (11: off, s_b, s_r),
//         out (14: off, s_b, s_t), new_state (17: off, s_b, s_r)
void main() {
  const uint B = P(1), T = P(2), C = P(3), K = P(4);
  const uint bc = gl_WorkGroupID.x * 64u + gl_LocalInvocationID.x;
  if (bc >= B * C) return;
  const uint b = bc / C, c = bc % C;
  float w[KMAX];
  float hist[KMAX];
  for (uint k = 0; k < K; ++k) w[k] = LOADF(W, DTW, P(8) + c * P(9) + k * P(10));
  for (uint r = 0; r + 1u < K; ++r) {
    hist[r] = HAS_STATE != 0 ? LOADF(S, DTS, P(11) + b * P(12) + r * P(13) + c) : 0.0;
  }
  for (uint t = 0; t < T; ++t) {
    const float xt = LOADF(X, DTX, P(5) + b * P(6) + t * P(7) + c);
    float acc = 0.0;
    for (uint k = 0; k + 1u < K; ++k) acc += w[k] * hist[k];
    acc += w[K - 1u] * xt;
    for (uint k = 0; k + 2u < K; ++k) hist[k] = hist[k + 1u];
    if (K >= 2u) hist[K - 2u] = xt;
    if (SILU != 0) acc = acc / (1.0 + exp(-acc));
    STOREF(O, DTX, P(14) + b * P(15) + t * P(16) + c, acc);
  }
  for (uint r = 0; r + 1u < K; ++r) STOREF(NS, DTNS, P(17) + b * P(18) + r * P(19) + c, hist[r]);
}
