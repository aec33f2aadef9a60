// Elementwise ops: binary add/sub/mul/div with NumPy broadcasting, unary
// math functions, `scale` (x*a + b) and `cast`.
#include "ops/elementwise.h"
#include "graph/message_text.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "ops/broadcast.h"
#include "ops/op_families.h"

namespace kiln {
namespace {

constexpr double kFiniteMax = std::numeric_limits<double>::max();

struct UnaryName {
  const char* name;
  UnaryOp op;
};
// gelu and scale are looked up separately (their attributes pick the form).
constexpr UnaryName kUnaryNames[] = {
    {"neg", UnaryOp::kNeg},         {"abs", UnaryOp::kAbs},   {"exp", UnaryOp::kExp},
    {"log", UnaryOp::kLog},         {"sqrt", UnaryOp::kSqrt}, {"rsqrt", UnaryOp::kRsqrt},
    {"tanh", UnaryOp::kTanh},       {"sigmoid", UnaryOp::kSigmoid},
    {"silu", UnaryOp::kSilu},       {"relu", UnaryOp::kRelu}, {"softplus", UnaryOp::kSoftplus},
};

std::string DescribeInput(const InferContext& ctx, int i) {
  const TensorType* t = ctx.input(i);
  return absl::StrCat("tensor ", QuoteName(ctx.input_tensor_name(i)), " ", DTypeName(t->dtype), " ",
                      ShapeString(t->dims));
}

absl::Status InferBinary(InferContext& ctx) {
  const TensorType& a = *ctx.input(0);
  const TensorType& b = *ctx.input(1);
  const BinaryOp op = *BinaryOpOf(ctx.node().op);
  if (a.dtype != b.dtype) {
    return ctx.InputError(1, absl::StrCat("dtype differs from input 'a' (", DescribeInput(ctx, 0),
                                          "); both inputs must have the same dtype"));
  }
  if (!IsFloat(a.dtype) && !(a.dtype == DType::kI32 && SupportsI32(op))) {
    return ctx.InputError(0, absl::StrCat("dtype ", DTypeName(a.dtype), " is not supported; expected f32, f16, bf16",
                                          SupportsI32(op) ? " or i32" : ""));
  }
  auto dims = BroadcastDims(a.dims, b.dims);
  if (!dims) {
    return ctx.InputError(1, absl::StrCat("shape ", ShapeString(b.dims), " does not broadcast with input 'a' (",
                                          DescribeInput(ctx, 0), ")"));
  }
  ctx.outputs = {{a.dtype, *dims}};
  return absl::OkStatus();
}

absl::Status BinaryReference(const Node& node, absl::Span<const TensorView> in,
                             absl::Span<const TensorView> out) {
  const BinaryOp op = *BinaryOpOf(node.op);
  const TensorView &a = in[0], &b = in[1], &y = out[0];
  const bool integer = y.dtype == DType::kI32;
  int64_t ia[kMaxRank], ib[kMaxRank];
  ForEachIndex(y.rank, y.dims, [&](const int64_t* idx) {
    BroadcastIndex(a.rank, a.dims.data(), y.rank, idx, ia);
    BroadcastIndex(b.rank, b.dims.data(), y.rank, idx, ib);
    const double va = LoadElement(a, ia), vb = LoadElement(b, ib);
    StoreElement(y, idx, integer ? ApplyBinaryI32(op, static_cast<int32_t>(va), static_cast<int32_t>(vb))
                                 : ApplyBinary(op, va, vb));
  });
  return absl::OkStatus();
}

absl::Status InferUnary(InferContext& ctx) {
  const TensorType& x = *ctx.input(0);
  const UnaryFn f = *UnaryFnOf(ctx.node());
  if (!IsFloat(x.dtype) && !(x.dtype == DType::kI32 && SupportsI32(f.op))) {
    return ctx.InputError(0, absl::StrCat("dtype ", DTypeName(x.dtype), " is not supported; expected f32, f16, bf16",
                                          SupportsI32(f.op) ? " or i32" : ""));
  }
  ctx.outputs = {{x.dtype, x.dims}};
  return absl::OkStatus();
}

absl::Status UnaryReference(const Node& node, absl::Span<const TensorView> in,
                            absl::Span<const TensorView> out) {
  const UnaryFn f = *UnaryFnOf(node);
  const TensorView &x = in[0], &y = out[0];
  const bool integer = y.dtype == DType::kI32;
  ForEachIndex(y.rank, y.dims, [&](const int64_t* idx) {
    const double v = LoadElement(x, idx);
    StoreElement(y, idx, integer ? ApplyUnaryI32(f.op, static_cast<int32_t>(v)) : ApplyUnary(f, v));
  });
  return absl::OkStatus();
}

absl::Status InferCast(InferContext& ctx) {
  const TensorType& x = *ctx.input(0);
  const DType to = *ParseDType(ctx.node().GetString("dtype"));  // a checked choice
  if (x.dtype == DType::kQ8_0 && !IsFloat(to)) {
    return ctx.InputError(0, absl::StrCat("q8_0 casts only to f32, f16 or bf16, not ", DTypeName(to)));
  }
  ctx.outputs = {{to, x.dims}};
  return absl::OkStatus();
}

absl::Status CastReference(const Node& node, absl::Span<const TensorView> in,
                           absl::Span<const TensorView> out) {
  const TensorView &x = in[0], &y = out[0];
  ForEachIndex(y.rank, y.dims, [&](const int64_t* idx) {
    StoreElement(y, idx, CastValue(LoadElement(x, idx), y.dtype));
  });
  return absl::OkStatus();
}

}  // namespace

std::optional<BinaryOp> BinaryOpOf(absl::string_view op) {
  if (op == "add") return BinaryOp::kAdd;
  if (op == "sub") return BinaryOp::kSub;
  if (op == "mul") return BinaryOp::kMul;
  if (op == "div") return BinaryOp::kDiv;
  return std::nullopt;
}

std::optional<UnaryFn> UnaryFnOf(const Node& node) { return UnaryFnOf(node.op, node); }

std::optional<UnaryFn> UnaryFnOf(absl::string_view op, const Node& node) {
  if (op == "gelu") {
    return UnaryFn{node.GetString("approximate") == "none" ? UnaryOp::kGeluErf : UnaryOp::kGeluTanh};
  }
  if (op == "scale") return UnaryFn{UnaryOp::kScale, node.GetFloat("a"), node.GetFloat("b")};
  for (const UnaryName& u : kUnaryNames) {
    if (op == u.name) return UnaryFn{u.op};
  }
  return std::nullopt;
}

double ApplyBinary(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kDiv: return a / b;
  }
  return 0;
}

double ApplyUnary(const UnaryFn& f, double x) {
  constexpr double kSqrt2OverPi = 0.79788456080286535588;
  constexpr double kSqrtHalf = 0.70710678118654752440;
  switch (f.op) {
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kAbs: return std::fabs(x);
    case UnaryOp::kExp: return std::exp(x);
    case UnaryOp::kLog: return std::log(x);
    case UnaryOp::kSqrt: return std::sqrt(x);
    case UnaryOp::kRsqrt: return 1.0 / std::sqrt(x);
    case UnaryOp::kTanh: return std::tanh(x);
    case UnaryOp::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::kSilu: return x / (1.0 + std::exp(-x));
    case UnaryOp::kGeluTanh:
      return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x)));
    case UnaryOp::kGeluErf: return 0.5 * x * (1.0 + std::erf(x * kSqrtHalf));
    case UnaryOp::kRelu: return x < 0 ? 0.0 : x;
    // Stable for large |x|: exp never overflows.
    case UnaryOp::kSoftplus: return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
    case UnaryOp::kScale: return x * f.a + f.b;
  }
  return 0;
}

double ApplyUnary(absl::string_view op, double x, const Node& node) {
  auto f = UnaryFnOf(op, node);
  return f ? ApplyUnary(*f, x) : std::nan("");
}

int32_t ApplyBinaryI32(BinaryOp op, int32_t a, int32_t b) {
  // Unsigned arithmetic wraps without undefined behaviour.
  const auto ua = static_cast<uint32_t>(a), ub = static_cast<uint32_t>(b);
  switch (op) {
    case BinaryOp::kAdd: return static_cast<int32_t>(ua + ub);
    case BinaryOp::kSub: return static_cast<int32_t>(ua - ub);
    case BinaryOp::kMul: return static_cast<int32_t>(ua * ub);
    case BinaryOp::kDiv: return 0;  // not defined for i32 (inference declines it)
  }
  return 0;
}

int32_t ApplyUnaryI32(UnaryOp op, int32_t x) {
  const auto ux = static_cast<uint32_t>(x);
  switch (op) {
    case UnaryOp::kNeg: return static_cast<int32_t>(0u - ux);
    case UnaryOp::kAbs: return x < 0 ? static_cast<int32_t>(0u - ux) : x;
    default: return 0;  // not defined for i32 (inference declines it)
  }
}

bool SupportsI32(BinaryOp op) { return op != BinaryOp::kDiv; }
bool SupportsI32(UnaryOp op) { return op == UnaryOp::kNeg || op == UnaryOp::kAbs; }

double CastValue(double x, DType to) {
  if (to != DType::kI32) return x;
  if (std::isnan(x)) return 0;
  constexpr double kLo = std::numeric_limits<int32_t>::min(), kHi = std::numeric_limits<int32_t>::max();
  return std::clamp(std::trunc(x), kLo, kHi);
}

void RegisterElementwiseOps(std::vector<OpSchema>& ops) {
  for (const char* name : {"add", "sub", "mul", "div"}) {
    ops.push_back({.name = name, .inputs = {{"a"}, {"b"}}, .outputs = {"out"},
                   .infer = InferBinary, .reference = BinaryReference});
  }
  auto unary = [&](const char* name, std::vector<AttrSpec> attrs) {
    ops.push_back({.name = name, .inputs = {{"x"}}, .outputs = {"out"}, .attrs = std::move(attrs),
                   .infer = InferUnary, .reference = UnaryReference});
  };
  for (const UnaryName& u : kUnaryNames) unary(u.name, {});
  unary("gelu", {{.name = "approximate", .type = AttrType::kString,
                  .default_value = AttrValue(std::string("tanh")), .choices = {"tanh", "none"}}});
  unary("scale", {{.name = "a", .type = AttrType::kFloat, .default_value = AttrValue(1.0),
                   .min = -kFiniteMax, .max = kFiniteMax},
                  {.name = "b", .type = AttrType::kFloat, .default_value = AttrValue(0.0),
                   .min = -kFiniteMax, .max = kFiniteMax}});
  ops.push_back({.name = "cast", .inputs = {{"x"}}, .outputs = {"out"},
                 .attrs = {{.name = "dtype", .type = AttrType::kString, .default_value = std::nullopt,
                            .choices = {"f32", "f16", "bf16", "i32"}}},
                 .infer = InferCast, .reference = CastReference});
}

}  // namespace kiln
