#version 450
// gather: out[i..., c] = table[ids[i...], c]; an id outside [0, N) raises
// the device error and writes nothing for that row.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int DTT = 0;
layout(constant_id = 1) const int DTO = 0;
DECLARE_SLOT(0, Tb)
DECLARE_SLOT(1, Ids)
DECLARE_SLOT(2, O)
// params: 1 n ids, 2 C, 3..6 ids dims, 7 ids T, 12 table off, 13 table row stride, 14 N, 15 out off
void main() {
  const uint nid = P(1), C = P(2), N = P(14);
  const uint n = nid * C;
  const uint stride = gl_NumWorkGroups.x * 256u;
  for (uint i = gl_WorkGroupID.x * 256u + gl_LocalInvocationID.x; i < n; i += stride) {
    const uint r = i / C, c = i % C;
    const int id = int(Ids_u[TOffset(7, Unflatten(r, PDims(3)))]);
    if (id < 0 || id >= int(N)) {
      if (c == 0u) RaiseError(1u, id, int(N), r);
      continue;
    }
    const uint row = P(12) + uint(id) * P(13);
    if (DTT == DT_Q8) {
      O_f[P(15) + i] = LOADQ8(Tb, row, c);
    } else if (DTT == DTO && (DTT == DT_F16 || DTT == DT_BF16)) {
      O_h[P(15) + i] = Tb_h[row + c];
    } else if (DTT == DTO) {
      O_u[P(15) + i] = Tb_u[row + c];
    } else {
      STOREF(O, DTO, P(15) + i, LOADF(Tb, DTT, row + c));
    }
  }
}
