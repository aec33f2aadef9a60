// Strided copies of 1, 2 or 4-byte elements: element i of the source's dims
// (row-major) goes to element i of the destination's dims, so one kernel does
// contiguous, slice, permute, transpose, reshape and each part of a concat.
__kernel void copy_strided(gout dst, long d_off, int4 d_str, int4 d_dims, gin src, long s_off, int4 s_str,
                           int4 s_dims, long n, int es) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const long is = s_off + dot4(unravel(i, s_dims), s_str);
  const long id = d_off + dot4(unravel(i, d_dims), d_str);
  if (es == 4) ((__global uint*)dst)[id] = ((__global const uint*)src)[is];
  else if (es == 2) ((__global ushort*)dst)[id] = ((__global const ushort*)src)[is];
  else dst[id] = src[is];
}

// gather: out[pos, c] = table[ids[pos], c]. Non-q8_0 tables copy element
// bits (i32 and NaN payloads exact); q8_0 rows decode to f32. A bad id is
// recorded and its row skipped.
__kernel void gather(gout y, long y_off, gin table, long t_off, long t_row, int tdt, int es, gin ids, long i_off,
                     int4 i_str, int4 i_dims, long n_ids, int N, int C, __global uint* err, uint node) {
  const long g = get_global_id(0);
  if (g >= n_ids * C) return;
  const long pos = g / C;
  const int c = (int)(g % C);
  const int id = ((__global const int*)ids)[i_off + dot4(unravel(pos, i_dims), i_str)];
  if (id < 0 || id >= N) {
    if (c == 0) report_error(err, 1u, node, id, N, (uint)pos);
    return;
  }
  if (tdt == DT_Q8) {
    ((__global float*)y)[y_off + g] = ld_q8(table, t_off + (long)id * t_row, c);
  } else if (es == 4) {
    ((__global uint*)y)[y_off + g] = ((__global const uint*)table)[t_off + (long)id * t_row + c];
  } else {
    ((__global ushort*)y)[y_off + g] = ((__global const ushort*)table)[t_off + (long)id * t_row + c];
  }
}

// write_rows: for each leading index and column c (one work-item), checks
// every row index first (a bad one is recorded and nothing is written), then
// writes rows in order so the last repeated index wins. `bytes`: same dtype,
// C counts bytes and offsets/strides are in bytes; else C counts elements.
__kernel void write_rows(gout y, long y_off, long y_lead0, long y_lead1, long y_row, gin src, long s_off,
                         long s_lead0, long s_lead1, long s_row, int sdt, int ydt, gin rows, long r_off,
                         int n, int R, int C, int lead0, int lead1, int bytes, __global uint* err, uint node) {
  const long g = get_global_id(0);
  if (g >= (long)lead0 * lead1 * C) return;
  const int c = (int)(g % C);
  const long l = g / C;
  const int l1 = (int)(l % lead1), l0 = (int)(l / lead1);
  __global const int* r = (__global const int*)rows + r_off;
  for (int i = 0; i < n; ++i) {
    const int row = r[i];
    if (row < 0 || row >= R) {
      if (g == 0) report_error(err, 2u, node, row, R, (uint)i);
      return;
    }
  }
  const long yb = y_off + l0 * y_lead0 + l1 * y_lead1 + c;
  const long sb = s_off + l0 * s_lead0 + l1 * s_lead1 + c;
  for (int i = 0; i < n; ++i) {
    const long yi = yb + (long)r[i] * y_row, si = sb + (long)i * s_row;
    if (bytes) y[yi] = src[si];
    else st(y, ydt, yi, ld(src, sdt, si));
  }
}
