// conv1d_causal: depthwise causal short convolution with carried state
// (definition in ops/conv1d_causal.h).
#include "ops/conv1d_causal.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"

namespace kiln {

absl::StatusOr<Conv1dCausalParams> ResolveConv1dCausal(const ParamContext& ctx) {
  if (absl::Status st = ctx.CheckWithSchema(); !st.ok()) return st;
  const TensorLayout& x = ctx.input(kConvX);
  const TensorLayout& w = ctx.input(kConvWeight);
  if (!x.present || x.rank != 3) return ctx.InputError(kConvX, "must be [B, T, C] (rank 3)");
  if (!w.present || w.rank != 2) return ctx.InputError(kConvWeight, "must be [C, K]");
  Conv1dCausalParams p;
  p.B = x.dims[0], p.T = x.dims[1], p.C = x.dims[2], p.K = w.dims[1];
  p.silu = ctx.node().GetBool("silu");
  p.x = x;
  p.weight = w;
  p.state = ctx.input(kConvState);
  p.has_state = p.state.present;
  const int64_t state_dims[3] = {p.B, p.K - 1, p.C};
  p.out = ctx.has_outputs() ? ctx.output(kConvOut) : LayoutOf(x.dtype, absl::MakeConstSpan(x.dims.data(), x.rank));
  p.new_state = ctx.has_outputs() ? ctx.output(kConvNewState)
                                  : LayoutOf(p.has_state ? p.state.dtype : x.dtype, state_dims);
  return p;
}

absl::StatusOr<Conv1dCausalParams> ResolveConv1dCausal(const Graph& graph, const Node& node) {
  return ResolveConv1dCausal(ParamContext(graph, node));
}

absl::StatusOr<Conv1dCausalParams> ResolveConv1dCausal(const Node& node, absl::Span<const TensorView> inputs,
                            absl::Span<const TensorView> outputs) {
  return ResolveConv1dCausal(ParamContext(node, inputs, outputs));
}

namespace {

absl::Status InferConv(InferContext& ctx) {
  const TensorType& x = *ctx.input(kConvX);
  const TensorType& w = *ctx.input(kConvWeight);
  const TensorType* state = ctx.input(kConvState);
  if (x.dims.size() != 3) return ctx.InputError(kConvX, "must be [B, T, C] (rank 3)");
  if (!IsFloat(x.dtype)) return ctx.InputError(kConvX, "must be f32, f16 or bf16");
  const int64_t B = x.dims[0], T = x.dims[1], C = x.dims[2];
  if (!IsFloat(w.dtype)) return ctx.InputError(kConvWeight, "must be f32, f16 or bf16");
  if (w.dims.size() != 2 || w.dims[0] != C || w.dims[1] < 1) {
    return ctx.InputError(kConvWeight, absl::StrCat("must be [C, K] with C = ", C, " and K >= 1"));
  }
  const int64_t K = w.dims[1];
  const std::vector<int64_t> state_dims = {B, K - 1, C};
  if (state) {
    if (!IsFloat(state->dtype)) return ctx.InputError(kConvState, "must be f32, f16 or bf16");
    if (state->dims != state_dims) {
      return ctx.InputError(kConvState,
                            absl::StrCat("must be [B, K-1, C] = ", ShapeString(state_dims)));
    }
  }
  ctx.outputs = {{x.dtype, {B, T, C}}, {state ? state->dtype : x.dtype, state_dims}};
  return absl::OkStatus();
}

absl::Status ConvReference(const Node& node, absl::Span<const TensorView> in,
                           absl::Span<const TensorView> out) {
  const TensorView& x = in[kConvX];
  const TensorView& w = in[kConvWeight];
  // The state may be absent: -1 in the node, or left off its input list.
  const TensorView state = in.size() > kConvState ? in[kConvState] : TensorView{};
  const TensorView& y = out[kConvOut];
  const TensorView& new_state = out[kConvNewState];
  auto params = ResolveConv1dCausal(node, in, out);
  if (!params.ok()) return params.status();
  const Conv1dCausalParams& prm = *params;
  const int64_t B = prm.B, T = prm.T, C = prm.C, K = prm.K;
  const bool silu = prm.silu;
  // xpad for one batch row: K-1 state rows then T rows of x. Reading it all
  // first makes new_state aliasing state harmless.
  std::vector<double> xpad((K - 1 + T) * C);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t r = 0; r < K - 1; ++r) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i[3] = {b, r, c};
        xpad[r * C + c] = state.present() ? LoadElement(state, i) : 0.0;
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i[3] = {b, t, c};
        xpad[(K - 1 + t) * C + c] = LoadElement(x, i);
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t wi[2] = {c, k};
          acc += LoadElement(w, wi) * xpad[(t + k) * C + c];
        }
        if (silu) acc = acc / (1.0 + std::exp(-acc));
        const int64_t o[3] = {b, t, c};
        StoreElement(y, o, acc);
      }
    }
    for (int64_t r = 0; r < K - 1; ++r) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t o[3] = {b, r, c};
        StoreElement(new_state, o, xpad[(T + r) * C + c]);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterConvOps(std::vector<OpSchema>& ops) {
  ops.push_back({.name = "conv1d_causal",
                 .inputs = {{"x"}, {"weight"}, {.name = "state", .optional = true}},
                 .outputs = {"out", "new_state"},
                 .attrs = {{.name = "silu", .type = AttrType::kBool, .default_value = false}},
                 .infer = InferConv,
                 .reference = ConvReference,
                 .inplace = {{kConvState, kConvNewState}}});
}

}  // namespace kiln
