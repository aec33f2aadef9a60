// Grids of the layout ops (gather, concat, slice, reshape, permute, transpose,
// contiguous) and the reductions (sum, mean, max).
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "conformance/grids.h"

namespace kiln::conformance {
namespace {

// Every dtype the copy ops take (no q8_0: only gather reads q8_0 rows).
std::vector<int64_t> CopyDTypes() { return DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kI32}); }

// Values for a dtype: ints for i32, N(0,1) otherwise.
Dist ValuesFor(DType t) { return t == DType::kI32 ? Ints(-1 << 30, 1 << 30) : Normal(); }

// The first `rank` dims of an odd-sized 4-D shape.
std::vector<int64_t> OddDims(int64_t rank) {
  static const std::vector<int64_t> dims = {3, 5, 7, 33};
  return std::vector<int64_t>(dims.end() - rank, dims.end());
}

void AddGather(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "gather";
  g.axes = {{"table", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kQ8_0})},
            {"n", {1, 7, 1000}},
            {"c", {32, 67, 4096}},
            {"ids_rank", {1, 2, 3}},
            {"layout", {0, 1, 2}},  // contiguous; table padded; ids padded
            {"bad_id", {0, 1}}};    // one id out of range: a run-time error
  g.make = [](const Point& p) -> std::optional<Case> {
    const DType t = AsDType(p.at("table"));
    const int64_t n = p.at("n"), c = p.at("c");
    if (t == DType::kQ8_0 && c % kQ8BlockSize != 0) return std::nullopt;
    static const std::vector<int64_t> lead = {2, 3, 5};
    std::vector<int64_t> ids(lead.end() - p.at("ids_rank"), lead.end());
    const bool bad = p.at("bad_id");
    InputSpec table = In(t, {n, c}, ValuesFor(t));
    InputSpec id = In(DType::kI32, ids, bad ? OneBadInt(0, n - 1) : Ints(0, n - 1));
    table.padded = p.at("layout") == 1;
    id.padded = p.at("layout") == 2;
    return Case{.op = "gather", .inputs = {table, id}, .expect_error = bad};
  };
  grids.push_back({"gather", std::move(g)});
}

void AddConcat(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "concat";
  g.axes = {{"inputs", {1, 2, 3}}, {"rank", {1, 2, 3, 4}}, {"axis", {0, 1, 2, 3, -1}},
            {"dtype", CopyDTypes()}, {"layout", {kContiguous, kPadded, kPermuted}}};
  g.make = [](const Point& p) -> std::optional<Case> {
    const int64_t rank = p.at("rank"), axis = p.at("axis");
    if (axis >= rank) return std::nullopt;
    const int a = static_cast<int>(axis < 0 ? axis + rank : axis);
    const DType t = AsDType(p.at("dtype"));
    static const int64_t sizes[] = {2, 1, 5};
    Case c{.op = "concat", .attrs = {{"axis", axis}}};
    for (int64_t i = 0; i < p.at("inputs"); ++i) {
      std::vector<int64_t> dims = OddDims(rank);
      dims[a] = sizes[i];
      // Only the first input takes the layout: the others show mixing.
      auto in = WithLayout(In(t, dims, ValuesFor(t)), i == 0 ? p.at("layout") : kContiguous);
      if (!in) return std::nullopt;
      c.inputs.push_back(*in);
    }
    return c;
  };
  grids.push_back({"concat", std::move(g)});
}

void AddSlice(std::vector<OpSubGrid>& grids) {
  struct Range {
    int64_t start, end, step;
  };
  static const std::vector<Range> ranges = {
      {0, std::numeric_limits<int64_t>::max(), 1}, {1, -1, 1}, {-5, std::numeric_limits<int64_t>::max(), 2},
      {2, 3, 1}, {0, 100, 3}};
  SubGrid g;
  g.name = "slice";
  g.axes = {{"rank", {1, 2, 3, 4}}, {"axis", {0, 1, 2, 3, -1}}, {"range", Indices(ranges.size())},
            {"dtype", CopyDTypes()}, {"layout", {kContiguous, kPadded, kPermuted}}};
  g.make = [](const Point& p) -> std::optional<Case> {
    const int64_t rank = p.at("rank"), axis = p.at("axis");
    if (axis >= rank) return std::nullopt;
    const DType t = AsDType(p.at("dtype"));
    std::vector<int64_t> dims = OddDims(rank);
    dims[axis < 0 ? axis + rank : axis] = 9;
    auto x = WithLayout(In(t, dims, ValuesFor(t)), p.at("layout"));
    if (!x) return std::nullopt;
    const Range& r = ranges[p.at("range")];
    return Case{.op = "slice", .inputs = {*x},
                .attrs = {{"axis", axis}, {"start", r.start}, {"end", r.end}, {"step", r.step}}};
  };
  grids.push_back({"slice", std::move(g)});
}

void AddReshape(std::vector<OpSubGrid>& grids) {
  static const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> shapes = {
      {{6, 35}, {2, 3, 5, 7}}, {{2, 3, 5, 7}, {-1, 7}}, {{4099}, {1, 4099, 1}}, {{3, 4, 8}, {4, -1}},
      {{2, 3, 5, 7}, {210}}};
  SubGrid g;
  g.name = "reshape";
  g.axes = {{"shape", Indices(shapes.size())}, {"dtype", CopyDTypes()},
            {"layout", {kContiguous, kPadded, kPermuted}}};
  g.make = [](const Point& p) -> std::optional<Case> {
    const auto& [from, to] = shapes[p.at("shape")];
    const DType t = AsDType(p.at("dtype"));
    auto x = WithLayout(In(t, from, ValuesFor(t)), p.at("layout"));
    if (!x) return std::nullopt;
    return Case{.op = "reshape", .inputs = {*x}, .attrs = {{"shape", to}}};
  };
  grids.push_back({"reshape", std::move(g)});
}

void AddPermute(std::vector<OpSubGrid>& grids) {
  // Every permutation of ranks 2..4.
  std::vector<std::vector<int64_t>> perms;
  for (int rank = 2; rank <= 4; ++rank) {
    std::vector<int64_t> perm(rank);
    for (int i = 0; i < rank; ++i) perm[i] = i;
    do perms.push_back(perm);
    while (std::next_permutation(perm.begin(), perm.end()));
  }
  SubGrid g;
  g.name = "permute";
  g.axes = {{"perm", Indices(perms.size())}, {"dtype", CopyDTypes()}, {"layout", {kContiguous, kPadded}}};
  g.make = [perms](const Point& p) -> std::optional<Case> {
    const std::vector<int64_t>& perm = perms[p.at("perm")];
    const DType t = AsDType(p.at("dtype"));
    auto x = WithLayout(In(t, OddDims(perm.size()), ValuesFor(t)), p.at("layout"));
    return Case{.op = "permute", .inputs = {*x}, .attrs = {{"perm", perm}}};
  };
  grids.push_back({"permute", std::move(g)});

  static const std::vector<std::pair<int64_t, int64_t>> pairs = {{-2, -1}, {0, 1}, {0, 2}, {1, 3}, {0, -1}, {2, 2}};
  SubGrid t;
  t.name = "transpose";
  t.axes = {{"rank", {2, 3, 4}}, {"dims", Indices(pairs.size())}, {"dtype", CopyDTypes()},
            {"layout", {kContiguous, kPadded, kPermuted}}};
  t.make = [](const Point& p) -> std::optional<Case> {
    const int64_t rank = p.at("rank");
    const auto [d0, d1] = pairs[p.at("dims")];
    if (d0 >= rank || d1 >= rank) return std::nullopt;
    const DType dt = AsDType(p.at("dtype"));
    auto x = WithLayout(In(dt, OddDims(rank), ValuesFor(dt)), p.at("layout"));
    if (!x) return std::nullopt;
    return Case{.op = "transpose", .inputs = {*x}, .attrs = {{"dim0", d0}, {"dim1", d1}}};
  };
  grids.push_back({"transpose", std::move(t)});

  SubGrid c;
  c.name = "contiguous";
  c.axes = {{"rank", {1, 2, 3, 4}}, {"dtype", CopyDTypes()},
            {"layout", {kContiguous, kPadded, kPermuted, kPaddedPermuted}}};
  c.make = [](const Point& p) -> std::optional<Case> {
    const DType dt = AsDType(p.at("dtype"));
    auto x = WithLayout(In(dt, OddDims(p.at("rank")), ValuesFor(dt)), p.at("layout"));
    if (!x) return std::nullopt;
    return Case{.op = "contiguous", .inputs = {*x}};
  };
  grids.push_back({"contiguous", std::move(c)});
}

void AddReduce(std::vector<OpSubGrid>& grids, const std::string& op) {
  static const std::vector<std::vector<int64_t>> shapes = {{1}, {7}, {4099}, {3, 5, 33}, {2, 3, 4, 65}};
  SubGrid g;
  g.name = op;
  g.axes = {{"shape", Indices(shapes.size())}, {"axis", {0, 1, 2, 3, -1, -2}}, {"keepdims", {0, 1}},
            {"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
            {"layout", {kContiguous, kPadded, kPermuted}}, {"specials", {0, 1}}};
  g.make = [op](const Point& p) -> std::optional<Case> {
    const std::vector<int64_t>& dims = shapes[p.at("shape")];
    const int64_t rank = dims.size(), axis = p.at("axis");
    if (axis >= rank || axis < -rank) return std::nullopt;
    auto x = WithLayout(In(AsDType(p.at("dtype")), dims, p.at("specials") ? Specials() : Normal()), p.at("layout"));
    if (!x) return std::nullopt;
    return Case{.op = op, .inputs = {*x}, .attrs = {{"axis", axis}, {"keepdims", p.at("keepdims") != 0}}};
  };
  grids.push_back({op, std::move(g)});
}

}  // namespace

void AddLayoutGrids(std::vector<OpSubGrid>& grids) {
  AddGather(grids);
  AddConcat(grids);
  AddSlice(grids);
  AddReshape(grids);
  AddPermute(grids);
  for (const char* op : {"sum", "mean", "max"}) AddReduce(grids, op);
}

}  // namespace kiln::conformance
