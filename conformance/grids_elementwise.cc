// Grids of the elementwise ops: binary (NumPy broadcasting), unary, cast.
#include <optional>
#include <string>
#include <vector>

#include "conformance/grids.h"

namespace kiln::conformance {
namespace {

// (a, b) shapes: equal, odd, SIMD tails, and broadcasting both ways.
struct BinaryShapes {
  std::vector<int64_t> a, b;
};
const std::vector<BinaryShapes>& BinaryShapeList() {
  static const auto* list = new std::vector<BinaryShapes>{
      {{1}, {1}},
      {{4099}, {4099}},
      {{3, 5, 33}, {3, 5, 33}},
      {{2, 3, 4, 65}, {65}},        // a bias row
      {{3, 1, 17}, {4, 1}},         // both sides broadcast: [3,4,17]
      {{2, 1, 6, 7}, {5, 1, 1}},    // [2,5,6,7]
      {{7, 1}, {1, 9}},             // an outer product
      {{1}, {2, 3, 5}},             // a scalar on the left
  };
  return *list;
}

const std::vector<std::vector<int64_t>>& UnaryShapeList() {
  static const auto* list = new std::vector<std::vector<int64_t>>{{1}, {4099}, {3, 5, 33}, {2, 3, 4, 65}};
  return *list;
}

void AddBinary(std::vector<OpSubGrid>& grids, const std::string& op) {
  SubGrid g;
  g.name = op;
  g.axes = {{"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kI32})},
            {"shape", Indices(BinaryShapeList().size())},
            {"layout", {0, 1, 2}},   // contiguous; a padded; a permuted and b padded
            {"specials", {0, 1}}};   // NaN and large values in a
  g.make = [op](const Point& p) -> std::optional<Case> {
    const DType t = AsDType(p.at("dtype"));
    const bool specials = p.at("specials");
    if (t == DType::kI32 && (op == "div" || specials)) return std::nullopt;
    const BinaryShapes& s = BinaryShapeList()[p.at("shape")];
    const Dist da = t == DType::kI32 ? Ints(-1000, 1000) : specials ? Specials() : Normal();
    const Dist db = t == DType::kI32 ? Ints(-1000, 1000) : op == "div" ? Uniform(0.5, 2) : Normal();
    const int64_t layout = p.at("layout");
    auto a = WithLayout(In(t, s.a, da), layout == 0 ? kContiguous : layout == 1 ? kPadded : kPermuted);
    auto b = WithLayout(In(t, s.b, db), layout == 2 ? kPadded : kContiguous);
    if (!a || !b) return std::nullopt;
    return Case{.op = op, .inputs = {*a, *b}};
  };
  grids.push_back({op, std::move(g)});
}

void AddUnary(std::vector<OpSubGrid>& grids, const std::string& op, std::vector<Attrs> variants, Dist dist,
              bool takes_i32) {
  SubGrid g;
  g.name = op;
  g.axes = {{"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kI32})},
            {"shape", Indices(UnaryShapeList().size())},
            {"layout", {kContiguous, kPadded, kPermuted}},
            {"specials", {0, 1}},
            {"variant", Indices(variants.size())}};
  g.make = [=](const Point& p) -> std::optional<Case> {
    const DType t = AsDType(p.at("dtype"));
    const bool specials = p.at("specials");
    if (t == DType::kI32 && (!takes_i32 || specials)) return std::nullopt;
    const Dist d = t == DType::kI32 ? Ints(-100000, 100000) : specials ? Specials(dist.kind == Dist::kNormal ? dist.a : 1) : dist;
    auto x = WithLayout(In(t, UnaryShapeList()[p.at("shape")], d), p.at("layout"));
    if (!x) return std::nullopt;
    return Case{.op = op, .inputs = {*x}, .attrs = variants[p.at("variant")]};
  };
  grids.push_back({op, std::move(g)});
}

void AddCast(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "cast";
  g.axes = {{"from", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kQ8_0})},
            {"to", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kI32})},
            {"shape", {0, 1, 2}},
            {"layout", {kContiguous, kPadded, kPermuted}},
            {"values", {0, 1, 2}}};  // N(0, 100^2); specials; beyond the i32 range
  g.make = [](const Point& p) -> std::optional<Case> {
    const DType from = AsDType(p.at("from")), to = AsDType(p.at("to"));
    const int64_t values = p.at("values");
    if (from == DType::kQ8_0 && to == DType::kI32) return std::nullopt;
    if (from == DType::kI32 && values != 0) return std::nullopt;
    if (values == 2 && (to != DType::kI32 || from == DType::kF16)) return std::nullopt;
    const bool q8 = from == DType::kQ8_0;
    static const std::vector<std::vector<int64_t>> shapes = {{1}, {4099}, {3, 5, 67}};
    static const std::vector<std::vector<int64_t>> q8_shapes = {{32}, {4096}, {3, 5, 64}};
    const Dist d = from == DType::kI32 ? Ints(-70000, 70000)
                   : values == 1       ? Specials(100)
                   : values == 2       ? Uniform(-5e9, 5e9)
                                       : Normal(100);
    auto x = WithLayout(In(from, (q8 ? q8_shapes : shapes)[p.at("shape")], d), p.at("layout"));
    if (!x) return std::nullopt;
    return Case{.op = "cast", .inputs = {*x}, .attrs = {{"dtype", std::string(DTypeName(to))}}};
  };
  grids.push_back({"cast", std::move(g)});
}

}  // namespace

void AddElementwiseGrids(std::vector<OpSubGrid>& grids) {
  for (const char* op : {"add", "sub", "mul", "div"}) AddBinary(grids, op);
  const std::vector<Attrs> plain = {Attrs{}};
  AddUnary(grids, "neg", plain, Normal(), true);
  AddUnary(grids, "abs", plain, Normal(), true);
  AddUnary(grids, "exp", plain, Normal(3), false);
  for (const char* op : {"log", "sqrt", "rsqrt"}) AddUnary(grids, op, plain, Uniform(0.01, 10), false);
  for (const char* op : {"tanh", "sigmoid", "silu", "relu", "softplus"}) AddUnary(grids, op, plain, Normal(3), false);
  AddUnary(grids, "gelu", {{{"approximate", std::string("tanh")}}, {{"approximate", std::string("none")}}},
           Normal(3), false);
  AddUnary(grids, "scale", {{{"a", 1.5}, {"b", -0.25}}, {{"a", -2.0}, {"b", 0.0}}}, Normal(), false);
  AddCast(grids);
}

}  // namespace kiln::conformance
