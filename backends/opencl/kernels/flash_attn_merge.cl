// Combines flash_attn's per-split partials (o, m, l; written by flash_attn
// or flash_attn_dec as part[split][b][i][h][PS]) and the sinks into the
// output. A work-group takes 32 output dims of one (b, i, h) row; its 8
// groups of 32 work-items each take every 8th split, so the splits' loads are
// in flight together, then two local reductions (max m, then sums).
// A split with m == -inf (every key masked) is skipped without reading its
// o, which the attention kernel left unwritten.
//
// -D D (the attention kernel's bucket), PS (floats per partial row: D + 2
// from flash_attn, D + 4 from flash_attn_dec; o at 0, m at D, l at D + 1).
#ifndef PS
#define PS (D + 2)
#endif
#define MC 32  // dims per work-group
#define MG 8   // split groups

__kernel __attribute__((reqd_work_group_size(MC * MG, 1, 1)))
void flash_attn_merge(gout out, long o_off, int odt, __global const float* part, gin sinks, long s_off,
                      int has_sinks, int B, int Sq, int Hq, int dv, int nsplit) {
  __local float redm[MG], rden[MG], rnum[MG][MC];
  const int lid = get_local_id(0);
  const int dl = lid % MC, sg = lid / MC;
  const int nd = (dv + MC - 1) / MC;
  const long row = get_group_id(0) / nd;  // (b, i, h)
  const int d = (int)(get_group_id(0) % nd) * MC + dl;
  const int h = (int)(row % Hq);
  const long stride = (long)B * Sq * Hq * PS;
  float mx = -INFINITY;
  for (int s = sg; s < nsplit; s += MG) mx = fmax(mx, part[s * stride + row * PS + D]);
  if (dl == 0) redm[sg] = mx;
  barrier(CLK_LOCAL_MEM_FENCE);
  float M = -INFINITY;
  for (int g = 0; g < MG; ++g) M = fmax(M, redm[g]);
  float num = 0.0f, den = 0.0f;
  if (M != -INFINITY) {
    for (int s = sg; s < nsplit; s += MG) {
      const long P = s * stride + row * PS;
      const float m = part[P + D];
      if (m == -INFINITY) continue;
      const float w = exp(m - M);
      if (d < dv) num += part[P + d] * w;
      den += part[P + D + 1] * w;
    }
  }
  rnum[sg][dl] = num;
  if (dl == 0) rden[sg] = den;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (sg != 0 || d >= dv) return;
  float N = 0.0f, L = 0.0f;
  for (int g = 0; g < MG; ++g) {
    N += rnum[g][dl];
    L += rden[g];
  }
  const float sink = has_sinks ? ((__global const float*)sinks)[s_off + h] : -INFINITY;
  const float val = fa_normalize(N, L, M, has_sinks, sink);
  st(out, odt, o_off + row * dv + d, val);
}
