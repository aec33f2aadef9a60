// Highway math with IEEE special values done right (Highway's Exp and Log are
// only specified on part of the float range): NaN stays NaN, exp overflows to
// inf, log(0) = -inf, log(x < 0) = NaN. Include after hwy/highway.h inside a
// HWY_TARGET_INCLUDE'd file, like any Highway -inl.h.

// Per-target include guard.
#if defined(KILN_BACKENDS_CPU_SIMD_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KILN_BACKENDS_CPU_SIMD_MATH_INL_H_
#undef KILN_BACKENDS_CPU_SIMD_MATH_INL_H_
#else
#define KILN_BACKENDS_CPU_SIMD_MATH_INL_H_
#endif

#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// exp(x) for every float x (Highway's Exp is valid up to +104 only).
template <class D, class V>
HWY_INLINE V SafeExp(D d, V x) {
  const V r = hn::Exp(d, hn::Min(x, hn::Set(d, 89.0f)));  // e^89 rounds to inf
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

// log(x) for every float x (Highway's Log is valid on (0, FLT_MAX] only).
template <class D, class V>
HWY_INLINE V SafeLog(D d, V x) {
  const V zero = hn::Zero(d);
  const V inf = hn::Set(d, std::numeric_limits<float>::infinity());
  V r = hn::Log(d, x);
  r = hn::IfThenElse(hn::Eq(x, zero), hn::Neg(inf), r);
  r = hn::IfThenElse(hn::Eq(x, inf), inf, r);
  r = hn::IfThenElse(hn::Lt(x, zero), hn::Set(d, std::numeric_limits<float>::quiet_NaN()), r);
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

// 1 / (1 + exp(-x))
template <class D, class V>
HWY_INLINE V Sigmoid(D d, V x) {
  const V one = hn::Set(d, 1.0f);
  return hn::Div(one, hn::Add(one, SafeExp(d, hn::Neg(x))));
}

// x / (1 + exp(-x)), the formula of ops/elementwise.h
template <class D, class V>
HWY_INLINE V Silu(D d, V x) {
  return hn::Div(x, hn::Add(hn::Set(d, 1.0f), SafeExp(d, hn::Neg(x))));
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#endif  // KILN_BACKENDS_CPU_SIMD_MATH_INL_H_
