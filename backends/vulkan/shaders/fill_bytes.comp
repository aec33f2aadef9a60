#version 450
// Sets pc1 bytes from byte pc0... (push constants: pbase = offset, pc1 = n,
// pc2 = value) of binding 0: Fill's unaligned edges.
#include "common.glsl"
layout(local_size_x = 64) in;
DECLARE_SLOT(0, dst)
void main() {
  for (uint i = gl_LocalInvocationID.x; i < pc.pc1; i += 64u) dst_ub[pc.pbase + i] = uint8_t(pc.pc2);
}
