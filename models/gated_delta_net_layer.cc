// The gated delta net (linear attention) block of Qwen3-Next and Qwen3.5, as
// Qwen3NextGatedDeltaNet / Qwen3_5GatedDeltaNet compute it:
//   input norm; projections to q, k, v, z, b, a (Qwen3-Next: fused
//   in_proj_qkvz and in_proj_ba, grouped per key head; Qwen3.5: separate
//   in_proj_qkv, in_proj_z, in_proj_b, in_proj_a); depthwise causal conv1d
//   with SiLU over the [q | k | v] channels, its last K-1 inputs carried in
//   blk.N.conv_state; beta = sigmoid(b); g = -exp(A_log) * softplus(a +
//   dt_bias); the gated delta rule with l2-normed q/k (scale 1/sqrt(K)) over
//   blk.N.ssm_state; per value head rms_norm(out) * w * silu(z) (a plain w:
//   the gated norm has no 1 + w); out_proj; residual.
#include <string>

#include "absl/strings/str_cat.h"
#include "models/layer_builder.h"

namespace kiln::models {

Tensor GatedDeltaNetBlock(LayerBuilder& lb, int64_t i, Tensor x) {
  const ModelConfig& c = lb.config();
  const int64_t T = lb.T();
  // S sequences of Ts tokens each: the conv and the recurrence run per
  // sequence, each over its own states.
  const int64_t S = lb.options().sequences, Ts = T / S;
  const int64_t Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads;
  const int64_t Dk = c.linear_key_head_dim, Dv = c.linear_value_head_dim, K = c.linear_conv_kernel;
  const int64_t r = Hv / Hk;  // value heads per key head
  const int64_t C = 2 * Hk * Dk + Hv * Dv;  // conv channels: q, k, v
  const std::string p = LayerPrefix(i) + "linear_attn.", n = absl::StrCat("blk.", i, ".");
  GraphBuilder& b = lb.b();

  Tensor h = lb.RmsNorm(x, LayerPrefix(i) + "input_layernorm.weight", n + "attn_norm", c.norm_offset_one);
  Tensor qkv, z, beta_logit, alpha;
  if (c.family == Family::kQwen3Next) {
    // in_proj_qkvz holds, per key head g: q_g (Dk), k_g (Dk), the r value
    // heads of g (r*Dv), their z (r*Dv); in_proj_ba per key head: b (r), a (r).
    // The conv runs over [all q | all k | all v] (the conv1d weight's
    // channel order), so the grouped columns are gathered into that order.
    const int64_t G = 2 * Dk + 2 * r * Dv, W = Hk * G;
    Tensor qkvz = lb.Linear(h, p + "in_proj_qkvz.weight", n + "ssm_in_qkvz");
    auto group = [&](int64_t width, int64_t offset, const char* what) {
      Tensor view = lb.Window(qkvz, {1, T, Hk, width}, {T * W, W, G, 1}, offset, n + "ssm_in_" + what + ".view");
      return lb.Op("contiguous", {view}, n + "ssm_in_" + what);
    };
    Tensor q = lb.Reshape(group(Dk, 0, "q"), {1, T, Hk * Dk});
    Tensor k = lb.Reshape(group(Dk, Dk, "k"), {1, T, Hk * Dk});
    Tensor v = lb.Reshape(group(r * Dv, 2 * Dk, "v"), {1, T, Hv * Dv});
    z = group(r * Dv, 2 * Dk + r * Dv, "z");
    qkv = lb.Op("concat", {q, k, v}, n + "ssm_in_qkv", {{"axis", int64_t{-1}}});
    Tensor ba = lb.Linear(h, p + "in_proj_ba.weight", n + "ssm_in_ba");
    const int64_t Wba = 2 * Hv;
    auto gate = [&](int64_t offset, const char* what) {
      Tensor view = lb.Window(ba, {1, T, Hk, r}, {T * Wba, Wba, 2 * r, 1}, offset, n + "ssm_in_" + what + ".view");
      return lb.Reshape(lb.Op("contiguous", {view}, n + "ssm_in_" + what), {1, T, Hv});
    };
    beta_logit = gate(0, "b");
    alpha = gate(r, "a");
  } else {
    qkv = lb.Linear(h, p + "in_proj_qkv.weight", n + "ssm_in_qkv");
    z = lb.Linear(h, p + "in_proj_z.weight", n + "ssm_in_z");
    beta_logit = lb.Linear(h, p + "in_proj_b.weight", n + "ssm_in_b");
    alpha = lb.Linear(h, p + "in_proj_a.weight", n + "ssm_in_a");
  }

  // Short causal conv (then SiLU); the conv1d weight [C, 1, K] is read as [C, K].
  Tensor conv_w = lb.WeightF32(p + "conv1d.weight", {C, K});
  Tensor conv_state = b.Input(n + "conv_state", DType::kF32, {S, K - 1, C});
  if (S > 1) qkv = lb.Reshape(qkv, {S, Ts, C});
  if (!lb.ok()) return {};
  auto conv = b.Op("conv1d_causal", {qkv, conv_w, conv_state}, {{"silu", true}}, n + "ssm_conv");
  if (conv.size() != 2) return {};
  b.Output(conv[1]);
  b.State(conv_state, conv[1]);
  Tensor q = lb.Window(conv[0], {S, Ts, Hk, Dk}, {Ts * C, C, Dk, 1}, 0, n + "ssm_q");
  Tensor k = lb.Window(conv[0], {S, Ts, Hk, Dk}, {Ts * C, C, Dk, 1}, Hk * Dk, n + "ssm_k");
  Tensor v = lb.Window(conv[0], {S, Ts, Hv, Dv}, {Ts * C, C, Dv, 1}, 2 * Hk * Dk, n + "ssm_v");

  if (S > 1) {
    beta_logit = lb.Reshape(beta_logit, {S, Ts, Hv});
    alpha = lb.Reshape(alpha, {S, Ts, Hv});
  }
  Tensor beta = lb.Op("sigmoid", {beta_logit}, n + "ssm_beta");
  Tensor dt = lb.Op("softplus", {lb.Op("add", {alpha, lb.WeightF32(p + "dt_bias")}, n + "ssm_dt_in")}, n + "ssm_dt");
  Tensor neg_a = lb.Op("neg", {lb.Op("exp", {lb.WeightF32(p + "A_log")}, n + "ssm_a")}, n + "ssm_neg_a");
  Tensor g = lb.Op("mul", {dt, neg_a}, n + "ssm_g");

  Tensor ssm_state = b.Input(n + "ssm_state", DType::kF32, {S, Hv, Dk, Dv});
  if (!lb.ok()) return {};
  auto gdn = b.Op("gated_delta_net", {q, k, v, g, beta, ssm_state}, {{"l2norm_qk", true}}, n + "ssm_gdn");
  if (gdn.size() != 2) return {};
  b.Output(gdn[1]);
  b.State(ssm_state, gdn[1]);

  Tensor normed = lb.Op("rms_norm", {gdn[0], lb.WeightF32(p + "norm.weight")}, n + "ssm_norm",
                        {{"eps", c.rms_norm_eps}});
  Tensor z_act = lb.Op("silu", {lb.Reshape(z, {S, Ts, Hv, Dv})}, n + "ssm_z_silu");
  Tensor gated = lb.Op("mul", {normed, z_act}, n + "ssm_gated");
  Tensor out = lb.Linear(lb.Reshape(gated, {1, T, Hv * Dv}), p + "out_proj.weight", n + "ssm_out");
  return lb.Op("add", {x, out}, n + "ssm_residual");
}

}  // namespace kiln::models
