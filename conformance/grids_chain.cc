// Chained cases: a few small chains of nodes run as one split, with their
// intermediates in one arena buffer laid out like the executor's memory plan
// (runner.h), so that ordering inside a split and byte-range hazards between
// dispatches are tested, not only single kernels. Shapes and dtypes are
// mostly those of the quick grid, so device backends compile few new
// pipeline variants.
#include <optional>
#include <vector>

#include "conformance/grids.h"
#include "ops/conv1d_causal.h"
#include "ops/gated_delta_net.h"

namespace kiln::conformance {
namespace {

// rms_norm -> linear -> silu -> mul -> linear (a SwiGLU-like MLP, hidden =
// ffn so that silu's output reuses the bytes of the dead norm output: a
// backend running silu before the first linear has read them fails).
void AddMlpChain(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "chain.mlp";
  g.axes = {{"t", {1, 5}}, {"w", DTypes({DType::kF32, DType::kF16})}};
  g.make = [](const Point& p) -> std::optional<Case> {
    constexpr int64_t kH = 128;
    const int64_t T = p.at("t");
    const DType w = AsDType(p.at("w"));
    Case c{.op = "chain",
           .inputs = {In(DType::kF32, {1, T, kH}), In(DType::kF32, {kH}, Uniform(0.5, 1.5)),
                      In(w, {kH, kH}, UnitRows()), In(w, {kH, kH}, UnitRows())}};
    c.chain = {{.op = "rms_norm", .inputs = {CaseInput(0), CaseInput(1)}},
               {.op = "linear", .inputs = {NodeOutput(0), CaseInput(2)}},
               {.op = "silu", .inputs = {NodeOutput(1)}},
               {.op = "mul", .inputs = {NodeOutput(2), NodeOutput(1)}},
               {.op = "linear", .inputs = {NodeOutput(3), CaseInput(3)}}};
    return c;
  };
  g.quick_extra = 0;
  grids.push_back({"chain", std::move(g)});
}

// rope(q), rope(k) -> flash_attn (causal prefill over its own tokens).
void AddRopeAttentionChain(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "chain.rope_attn";
  g.axes = {{"t", {5, 33}}, {"kv", DTypes({DType::kF32, DType::kF16})}};
  g.make = [](const Point& p) -> std::optional<Case> {
    const int64_t T = p.at("t");
    const DType kv = AsDType(p.at("kv"));
    Case c{.op = "chain",
           .inputs = {In(kv, {1, T, 4, 64}), In(kv, {1, T, 2, 64}), In(kv, {1, T, 2, 64}),
                      In(DType::kI32, {T}, DistinctInts(0, 4095))}};
    c.chain = {{.op = "rope", .inputs = {CaseInput(0), CaseInput(3)}, .attrs = {{"theta", 1e6}}},
               {.op = "rope", .inputs = {CaseInput(1), CaseInput(3)}, .attrs = {{"theta", 1e6}}},
               {.op = "flash_attn", .inputs = {NodeOutput(0), NodeOutput(1), CaseInput(2)}, .attrs = {{"causal", true}}}};
    return c;
  };
  g.quick_extra = 0;
  grids.push_back({"chain", std::move(g)});
}

// conv1d_causal (conv state in place) -> l2_norm(q), l2_norm(k) ->
// gated_delta_net (recurrent state in place), q/k/v read as channel windows
// of the conv output (views of an intermediate), as in a Qwen3.5 layer.
void AddConvGdnChain(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "chain.conv_gdn";
  g.axes = {{"t", {1, 6}}, {"b", {1, 3}}};
  g.make = [](const Point& p) -> std::optional<Case> {
    constexpr int64_t kH = 2, kD = 32, kC = 3 * kH * kD, kK = 4;
    const int64_t T = p.at("t"), B = p.at("b");
    Case c{.op = "chain",
           .inputs = {In(DType::kF32, {B, T, kC}), In(DType::kF32, {kC, kK}, Normal(0.5)),
                      In(DType::kF32, {B, kK - 1, kC}), In(DType::kF32, {B, T, kH}, Gate()),
                      In(DType::kF32, {B, T, kH}, Beta()), In(DType::kF32, {B, kH, kD, kD}, Normal(0.5))}};
    const std::vector<int64_t> head = {B, T, kH, kD}, strides = {T * kC, kC, kD, 1};
    c.chain = {{.op = "conv1d_causal", .inputs = {CaseInput(0), CaseInput(1), CaseInput(2)},
                .attrs = {{"silu", true}}, .inplace = {{kConvState, kConvNewState}}},
               {.op = "l2_norm", .inputs = {ViewOf(NodeOutput(0), head, 0, strides)}},
               {.op = "l2_norm", .inputs = {ViewOf(NodeOutput(0), head, kH * kD, strides)}},
               {.op = "gated_delta_net",
                .inputs = {NodeOutput(1), NodeOutput(2), ViewOf(NodeOutput(0), head, 2 * kH * kD, strides),
                           CaseInput(3), CaseInput(4), CaseInput(5)},
                .inplace = {{kGdnState, kGdnFinalState}}}};
    return c;
  };
  g.quick_extra = 0;
  grids.push_back({"chain", std::move(g)});
}

// write_rows into the K and V caches (states, in place) -> flash_attn reading
// the whole caches through [B,S,H,D] views of write_rows' outputs. The caches
// hold kPast written cells, then NaN (never written); the chain writes cells
// kPast .. kPast+N-1 and the mask hides the cells after them, so a backend
// that runs attention before the writes land reads NaN.
void AddKvCacheAttentionChain(std::vector<OpSubGrid>& grids) {
  SubGrid g;
  g.name = "chain.kv_attn";
  g.axes = {{"n", {1, 3}}, {"cache", DTypes({DType::kF16, DType::kF32})}};
  g.make = [](const Point& p) -> std::optional<Case> {
    constexpr int64_t kS = 70, kHkv = 2, kD = 64, kPast = 64;
    const int64_t N = p.at("n");
    const DType t = AsDType(p.at("cache"));
    Dist cache = Normal();
    cache.nan_from = kPast;
    Case c{.op = "chain",
           .inputs = {In(t, {1, kS, kHkv * kD}, cache), In(t, {1, kS, kHkv * kD}, cache),
                      In(DType::kF32, {1, N, kHkv * kD}), In(DType::kF32, {1, N, kHkv * kD}),
                      In(DType::kI32, {N}, DistinctInts(kPast, kPast + N - 1)), In(DType::kF32, {1, N, 4, kD}),
                      In(DType::kF16, {1, 1, N, kS}, Mask(MaskKind::kUnwritten, kPast + N))}};
    const std::vector<int64_t> heads = {1, kS, kHkv, kD};
    c.chain = {{.op = "write_rows", .inputs = {CaseInput(0), CaseInput(2), CaseInput(4)}, .inplace = {{0, 0}}},
               {.op = "write_rows", .inputs = {CaseInput(1), CaseInput(3), CaseInput(4)}, .inplace = {{0, 0}}},
               {.op = "flash_attn",
                .inputs = {CaseInput(5), ViewOf(NodeOutput(0), heads), ViewOf(NodeOutput(1), heads), CaseInput(6)}}};
    return c;
  };
  g.quick_extra = 0;
  grids.push_back({"chain", std::move(g)});
}

}  // namespace

void AddChainGrids(std::vector<OpSubGrid>& grids) {
  AddMlpChain(grids);
  AddRopeAttentionChain(grids);
  AddConvGdnChain(grids);
  AddKvCacheAttentionChain(grids);
}

}  // namespace kiln::conformance
