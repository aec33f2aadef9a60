// Grids of the ops that update states: conv1d_causal (carried conv state) and
// write_rows (appending to a KV cache), both also run in place.
#include <optional>
#include <string>
#include <vector>

#include "conformance/grids.h"
#include "ops/conv1d_causal.h"
#include "ops/write_rows.h"

namespace kiln::conformance {
namespace {

void AddConv(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "conv1d_causal";
  g.axes = {{"b", {1, 3}},
            {"t", {1, 2, 17, 64}},
            {"c", {1, 64, 130}},
            {"k", {1, 2, 4}},
            {"state", {0, 1, 2}},  // absent; present; present and updated in place
            {"silu", {0, 1}},
            {"dtype", DTypes({DType::kF32, DType::kF16, DType::kBF16})},
            {"weight_f32", {0, 1}},  // the weight in f32 rather than x's dtype
            {"layout", {kContiguous, kPadded}}};  // x a window of a wider projection
  g.make = [](const Point& p) -> std::optional<Case> {
    const int64_t B = p.at("b"), T = p.at("t"), C = p.at("c"), K = p.at("k"), state = p.at("state");
    if (K == 1 && state > 0) return std::nullopt;  // a [B,0,C] state carries nothing
    const DType t = AsDType(p.at("dtype"));
    InputSpec x = *WithLayout(In(t, {B, T, C}), p.at("layout"));
    Case c{.op = "conv1d_causal", .inputs = {x, In(p.at("weight_f32") ? DType::kF32 : t, {C, K}, Normal(0.5))}};
    if (state > 0) c.inputs.push_back(In(t, {B, K - 1, C}));
    if (state == 2) c.inplace = {{kConvState, kConvNewState}};
    if (p.at("silu")) c.attrs["silu"] = true;
    return c;
  };
  g.strength = 2;
  grids.push_back({"conv1d_causal", std::move(g)});
}

void AddWriteRows(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "write_rows";
  g.axes = {{"rank", {2, 3, 4}},
            {"r", {1, 8, 100}},
            {"c", {32, 67, 128}},
            {"n", {1, 3, 8}},
            {"dst", DTypes({DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kQ8_0})},
            {"src", {0, 1}},   // dst's dtype; another float dtype (converted)
            {"rows", {0, 1, 2}},  // distinct; with repeats (the last wins); one out of range (an error)
            {"mode", {0, 1, 2}}};  // out of place; in place; dst a window of a larger cache
  g.make = [](const Point& p) -> std::optional<Case> {
    const int64_t rank = p.at("rank"), R = p.at("r"), C = p.at("c"), n = p.at("n");
    const DType dst = AsDType(p.at("dst"));
    if (dst == DType::kQ8_0 && C % kQ8BlockSize != 0) return std::nullopt;
    DType src = dst;
    if (p.at("src")) {
      if (!IsFloat(dst)) return std::nullopt;
      src = dst == DType::kF32 ? DType::kF16 : DType::kF32;
    }
    const int64_t rows = p.at("rows");
    if (rows == 0 && n > R) return std::nullopt;
    static const std::vector<int64_t> lead = {2, 3};
    std::vector<int64_t> dd(lead.end() - (rank - 2), lead.end()), sd = dd;
    dd.insert(dd.end(), {R, C});
    sd.insert(sd.end(), {n, C});
    auto values = [](DType t) { return t == DType::kI32 ? Ints(-1 << 30, 1 << 30) : Normal(); };
    InputSpec d = In(dst, dd, values(dst));
    d.padded = p.at("mode") == 2;
    const Dist ids = rows == 0 ? DistinctInts(0, R - 1) : rows == 1 ? Ints(0, R - 1) : OneBadInt(0, R - 1);
    Case c{.op = "write_rows", .inputs = {d, In(src, sd, values(src)), In(DType::kI32, {n}, ids)},
           .expect_error = rows == 2};
    if (p.at("mode") == 1) c.inplace = {{kWriteRowsDst, 0}};
    return c;
  };
  g.strength = 2;
  grids.push_back({"write_rows", std::move(g)});
}

}  // namespace

void AddStateGrids(std::vector<OpSubGrid>& grids) {
  AddConv(grids);
  AddWriteRows(grids);
}

}  // namespace kiln::conformance
