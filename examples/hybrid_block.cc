// hybrid-block-{decode,prefill}: a Qwen3.5-style pair of decoder layers, a
// gated delta net (linear attention) layer then a full attention layer, each
// followed by a SwiGLU MLP, in small-model shapes (hidden 1024; GDN with 8
// q/k heads and 16 value heads of 128, conv kernel 4).
#include "examples/hybrid_block.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/attention_block.h"

namespace kiln::examples {
namespace {

struct GdnShape {
  int64_t k_heads = 8;
  int64_t v_heads = 16;
  int64_t head_k = 128;
  int64_t head_v = 128;
  int64_t conv_kernel = 4;
};

// x + out_proj(gated_norm(gated_delta_net(conv(in_proj(rms_norm(x)))))).
// Graph states "<p>.conv_state" f32 [B,K-1,C] (the last K-1 conv inputs) and
// "<p>.ssm_state" f32 [B,Hv,K,V] (the recurrent state).
Tensor GdnLayer(GraphBuilder& b, RandomWeights& w, const std::string& p, Tensor x,
                const StepInputs& in, const AttentionShape& a, const GdnShape& g) {
  const int64_t B = in.shape.batch, T = in.shape.tokens;
  const int64_t Hk = g.k_heads, Hv = g.v_heads, K = g.head_k, V = g.head_v;
  const int64_t C = 2 * Hk * K + Hv * V;  // q, k and v channels share the conv

  Tensor h = RmsNorm(b, w, absl::StrCat(p, ".attn_norm"), x, a.eps);
  Tensor qkv = Linear(b, w, absl::StrCat(p, ".ssm_in_qkv"), h, C);
  Tensor z = Linear(b, w, absl::StrCat(p, ".ssm_in_z"), h, Hv * V);
  Tensor beta_logit = Linear(b, w, absl::StrCat(p, ".ssm_in_b"), h, Hv);
  Tensor alpha = Linear(b, w, absl::StrCat(p, ".ssm_in_a"), h, Hv);

  // Short causal conv (then SiLU) over the q/k/v channels; its last K-1
  // inputs carry to the next step.
  Tensor conv_w = w.F32(absl::StrCat(p, ".ssm_conv1d.weight"), {C, g.conv_kernel},
                        [&](double u) { return static_cast<float>((2 * u - 1) * 0.8); });
  Tensor conv_state =
      b.Input(absl::StrCat(p, ".conv_state"), DType::kF32, {B, g.conv_kernel - 1, C});
  auto conv = b.Op("conv1d_causal", {qkv, conv_w, conv_state}, {{"silu", true}},
                   absl::StrCat(p, ".ssm_conv"));
  if (conv.size() != 2) return {};
  b.Output(conv[1]);
  b.State(conv_state, conv[1]);

  // q, k and v are views of the conv output's channel ranges.
  const int64_t f = sizeof(float);
  Tensor q = b.View(conv[0], {B, T, Hk, K}, {T * C * f, C * f, K * f, f}, 0,
                    absl::StrCat(p, ".ssm_q"));
  Tensor k = b.View(conv[0], {B, T, Hk, K}, {T * C * f, C * f, K * f, f}, Hk * K * f,
                    absl::StrCat(p, ".ssm_k"));
  Tensor v = b.View(conv[0], {B, T, Hv, V}, {T * C * f, C * f, V * f, f}, 2 * Hk * K * f,
                    absl::StrCat(p, ".ssm_v"));

  // Gates: beta = sigmoid(b) in (0,1); g = -exp(A_log) * softplus(a + dt_bias)
  // <= 0, the log of the per-step decay.
  Tensor beta = b.Op1("sigmoid", {beta_logit}, {}, absl::StrCat(p, ".ssm_beta"));
  Tensor dt_bias = w.F32(absl::StrCat(p, ".ssm_dt.bias"), {Hv}, [](double u) {
    const double dt = std::exp(std::log(0.001) + u * (std::log(0.1) - std::log(0.001)));
    return static_cast<float>(std::log(std::expm1(dt)));  // softplus^-1(dt)
  });
  Tensor a_log = w.F32(absl::StrCat(p, ".ssm_a_log"), {Hv},
                       [](double u) { return static_cast<float>(std::log(1.0 + 15.0 * u)); });
  Tensor dt = b.Op1("softplus", {b.Op1("add", {alpha, dt_bias}, {}, absl::StrCat(p, ".ssm_dt_in"))},
                    {}, absl::StrCat(p, ".ssm_dt"));
  Tensor neg_a = b.Op1("neg", {b.Op1("exp", {a_log}, {}, absl::StrCat(p, ".ssm_a"))}, {},
                       absl::StrCat(p, ".ssm_neg_a"));
  Tensor gate = b.Op1("mul", {dt, neg_a}, {}, absl::StrCat(p, ".ssm_g"));

  Tensor ssm_state =
      b.Input(absl::StrCat(p, ".ssm_state"), DType::kF32, {B, Hv, K, V});
  auto gdn = b.Op("gated_delta_net", {q, k, v, gate, beta, ssm_state}, {{"l2norm_qk", true}},
                  absl::StrCat(p, ".ssm_gdn"));
  if (gdn.size() != 2) return {};
  b.Output(gdn[1]);
  b.State(ssm_state, gdn[1]);

  // Gated output norm per value head: rms_norm(out) * silu(z).
  Tensor normed = RmsNorm(b, w, absl::StrCat(p, ".ssm_norm"), gdn[0], a.eps);
  Tensor z_act = b.Op1("silu", {Reshape(b, z, {B, T, Hv, V})}, {}, absl::StrCat(p, ".ssm_z_silu"));
  Tensor gated = b.Op1("mul", {normed, z_act}, {}, absl::StrCat(p, ".ssm_gated"));
  Tensor out = Linear(b, w, absl::StrCat(p, ".ssm_out"), Reshape(b, gated, {B, T, Hv * V}),
                      a.hidden);
  return b.Op1("add", {x, out}, {}, absl::StrCat(p, ".ssm_residual"));
}

}  // namespace

absl::StatusOr<Graph> MakeHybridBlock(bool decode, uint64_t seed, int64_t prefill_tokens) {
  StepShape shape;
  shape.decode = decode;
  shape.tokens = decode ? 1 : prefill_tokens;
  const AttentionShape a;
  const GdnShape g;
  GraphBuilder b(decode ? "hybrid-block-decode" : "hybrid-block-prefill");
  RandomWeights w(b, seed);
  Tensor x;
  StepInputs in = AddStepInputs(b, shape, a.hidden, x);
  Tensor y = GdnLayer(b, w, "blk.0", x, in, a, g);
  y = MlpLayer(b, w, "blk.0", y, a);
  y = AttentionLayer(b, w, "blk.1", y, in, a);
  y = MlpLayer(b, w, "blk.1", y, a);
  if (b.status().ok()) b.Rename(y, "y");
  b.Output(y);
  b.SetMetadata(
      "description",
      absl::StrCat("A Qwen3.5-style pair of decoder layers (hidden 1024): gated delta net "
                   "(8 q/k heads, 16 value heads of 128, conv kernel 4) then attention (16 query "
                   "/ 8 KV heads of 128), each with a SwiGLU MLP of 3072, ",
                   decode ? "decoding one token (carried conv and recurrent states, 4096-row "
                            "f16 KV cache)"
                          : absl::StrCat("prefilling the first ", prefill_tokens, " tokens of a sequence")));
  return b.Build();
}

}  // namespace kiln::examples
