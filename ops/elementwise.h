// The scalar definitions of the elementwise ops, shared by the reference
// (ops/elementwise.cc) and backends (e.g. the CPU backend's scalar tails), so
// that every implementation computes the same function.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "graph/dtype.h"
#include "graph/node.h"

namespace kiln {

enum class BinaryOp { kAdd, kSub, kMul, kDiv };
enum class UnaryOp {
  kNeg, kAbs, kExp, kLog, kSqrt, kRsqrt, kTanh, kSigmoid, kSilu,
  kGeluTanh,  // gelu, approximate = "tanh"
  kGeluErf,   // gelu, approximate = "none"
  kRelu, kSoftplus,
  kScale,     // x * a + b
};

// A unary node's function with its attributes folded in.
struct UnaryFn {
  UnaryOp op = UnaryOp::kNeg;
  double a = 1, b = 0;  // scale only
};

std::optional<BinaryOp> BinaryOpOf(absl::string_view op);  // nullopt: not binary
// For a validated node (attributes normalized); nullopt: not a unary op.
std::optional<UnaryFn> UnaryFnOf(const Node& node);
// Same, for op `op` with the attributes of `node`.
std::optional<UnaryFn> UnaryFnOf(absl::string_view op, const Node& node);

// Float arithmetic (the reference evaluates it in f64, then rounds to the
// output dtype):
//   sigmoid(x)  = 1 / (1 + exp(-x))          silu(x) = x * sigmoid(x)
//   gelu tanh   = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   gelu erf    = 0.5 x (1 + erf(x / sqrt(2)))
//   softplus(x) = log(1 + exp(x)), computed as max(x,0) + log1p(exp(-|x|))
//   relu(x)     = x < 0 ? 0 : x (NaN stays NaN)     rsqrt(x) = 1 / sqrt(x)
double ApplyBinary(BinaryOp op, double a, double b);
double ApplyUnary(const UnaryFn& f, double x);
// Convenience (slow: looks the op up per call): unary op `op` with the
// attributes of validated `node`; NaN if `op` is not a unary op.
double ApplyUnary(absl::string_view op, double x, const Node& node);

// i32 arithmetic (add, sub, mul, neg, abs) wraps around in two's complement,
// like C++ unsigned arithmetic cast back; abs(INT32_MIN) == INT32_MIN.
int32_t ApplyBinaryI32(BinaryOp op, int32_t a, int32_t b);
int32_t ApplyUnaryI32(UnaryOp op, int32_t x);
bool SupportsI32(BinaryOp op);  // add, sub, mul
bool SupportsI32(UnaryOp op);   // neg, abs

// The value `cast` stores for `x` converted to `to`. To i32: truncates toward
// zero (C++, NumPy, PyTorch), saturates at the i32 range, NaN -> 0. To float
// types: x itself (rounding to nearest even happens when it is stored).
double CastValue(double x, DType to);

}  // namespace kiln
