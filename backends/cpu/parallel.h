// The CPU backend's one thread pool is OpenMP's. These run work on it, or on
// the calling thread alone without entering a parallel region when one
// thread is asked for (entering a region costs ~0.45 us even for tiny ops).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace kiln::cpu {

// fn(thread, threads) on `threads` threads (the caller is thread 0).
template <class F>
void ParallelRun(int threads, F&& fn) {
  if (threads <= 1) {
    fn(0, 1);
    return;
  }
#pragma omp parallel num_threads(threads)
  fn(omp_get_thread_num(), omp_get_num_threads());
}

// fn(begin, end) over [0, n) split into one contiguous range per thread
// (ranges start at multiples of `align`).
template <class F>
void ParallelFor(int64_t n, int threads, F&& fn, int64_t align = 1) {
  if (n <= 0) return;
  const int64_t units = (n + align - 1) / align;
  threads = static_cast<int>(std::min<int64_t>(threads, units));
  if (threads <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  ParallelRun(threads, [&](int t, int nt) {
    const int64_t per = units / nt, extra = units % nt;
    const int64_t u0 = t * per + std::min<int64_t>(t, extra);
    const int64_t u1 = u0 + per + (t < extra ? 1 : 0);
    const int64_t b = u0 * align, e = std::min(n, u1 * align);
    if (b < e) fn(b, e);
  });
}

}  // namespace kiln::cpu
