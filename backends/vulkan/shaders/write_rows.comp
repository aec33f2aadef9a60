#version 450
// write_rows scatter: workgroup (i, lead) writes src row i into out row
// rows[i]. Every index is checked first (a bad one raises the device error
// and nothing is written); with repeated indices the last one wins.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const int DTS = 0;
layout(constant_id = 1) const int DTO = 0;
layout(constant_id = 2) const int COPY = 0;  // 1: copy row i of src to row i (dst -> out, not in place)
DECLARE_SLOT(0, Src)
DECLARE_SLOT(1, Rows)
DECLARE_SLOT(2, O)
// params: 1 n, 2 R, 3 C (elements; bytes per row for q8_0), 4 lead dim 1 (lead = l0 * it + l1),
//         5 out: off, s_l0, s_l1, s_row   9 src: off, s_l0, s_l1, s_row   13 rows: off, stride
shared uint bad_;
shared uint dup_;
void main() {
  const uint n = P(1), R = P(2), C = P(3);
  const uint i = gl_WorkGroupID.x;
  const uint l0 = gl_WorkGroupID.y / P(4), l1 = gl_WorkGroupID.y % P(4);
  if (COPY != 0) {
    const uint ob = P(5) + l0 * P(6) + l1 * P(7) + i * P(8);
    const uint sb = P(9) + l0 * P(10) + l1 * P(11) + i * P(12);
    for (uint c = gl_LocalInvocationID.x; c < C; c += 128u) {
      if (DTO == DT_Q8) O_ub[ob + c] = Src_ub[sb + c];
      else if (DTO == DT_F16 || DTO == DT_BF16) O_h[ob + c] = Src_h[sb + c];
      else O_u[ob + c] = Src_u[sb + c];
    }
    return;
  }
  if (gl_LocalInvocationID.x == 0u) { bad_ = 0xffffffffu; dup_ = 0u; }
  barrier();
  const int mine = int(Rows_u[P(13) + i * P(14)]);
  for (uint j = gl_LocalInvocationID.x; j < n; j += 128u) {
    const int r = int(Rows_u[P(13) + j * P(14)]);
    if (r < 0 || r >= int(R)) atomicMin(bad_, j);
    if (j > i && r == mine) atomicOr(dup_, 1u);
  }
  barrier();
  if (bad_ != 0xffffffffu) {
    if (i == 0u && gl_WorkGroupID.y == 0u && gl_LocalInvocationID.x == 0u) {
      RaiseError(2u, int(Rows_u[P(13) + bad_ * P(14)]), int(R), bad_);
    }
    return;
  }
  if (dup_ != 0u) return;
  const uint ob = P(5) + l0 * P(6) + l1 * P(7) + uint(mine) * P(8);
  const uint sb = P(9) + l0 * P(10) + l1 * P(11) + i * P(12);
  for (uint c = gl_LocalInvocationID.x; c < C; c += 128u) {
    if (DTO == DT_Q8) O_ub[ob + c] = Src_ub[sb + c];
    else if (DTS == DTO && (DTS == DT_F16 || DTS == DT_BF16)) O_h[ob + c] = Src_h[sb + c];
    else if (DTS == DTO) O_u[ob + c] = Src_u[sb + c];
    else STOREF(O, DTO, ob + c, LOADF(Src, DTS, sb + c));
  }
}
