// rope over x [B,T,H,D] (strided), one work-item per output element; the
// angle p * theta^(-2i/rd) in double where the device has it (large
// positions lose too much in f32), else f32.
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double angle_t;
#else
typedef float angle_t;
#endif

__kernel void rope(gout y, long y_off, gin x, long x_off, int4 x_str, int4 dims, int xdt, gin pos, long p_off, int p_bstr,
                   int p_tstr, int rd, int interleaved, float l2t_hi, float l2t_lo, long n) {
  const long g = get_global_id(0);
  if (g >= n) return;
  const int4 idx = unravel(g, dims);
  const int d = idx.w;
  const long row = x_off + (long)idx.x * x_str.x + (long)idx.y * x_str.y + (long)idx.z * x_str.z;
  if (d >= rd) {
    st(y, xdt, y_off + g, ld(x, xdt, row + d));
    return;
  }
  const int half_rd = rd / 2;
  int i, a, b;
  if (interleaved) { i = d / 2; a = 2 * i; b = a + 1; }
  else { i = d < half_rd ? d : d - half_rd; a = i; b = i + half_rd; }
  const int p = ((__global const int*)pos)[p_off + (long)idx.x * p_bstr + (long)idx.y * p_tstr];
  const angle_t inv = exp2(-((angle_t)l2t_hi + (angle_t)l2t_lo) * (angle_t)(2 * i) / (angle_t)rd);
  const angle_t ang = (angle_t)p * inv;
  const float c = (float)cos(ang), s = (float)sin(ang);
  const float xa = ld(x, xdt, row + a), xb = ld(x, xdt, row + b);
  st(y, xdt, y_off + g, d == a ? xa * c - xb * s : xa * s + xb * c);
}
