// flash_attn: schema, inference and the reference, exactly as shared OPS.md
// defines them. The reference is the oracle every backend is tested against:
// clear, f64 throughout, no tiling or online softmax.
#include "ops/flash_attn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"

namespace kiln {

double AlibiSlope(int64_t h, int64_t num_q_heads, double max_bias) {
  if (max_bias == 0.0) return 1.0;
  const int64_t n = int64_t{1} << static_cast<int>(std::floor(std::log2(static_cast<double>(num_q_heads))));
  const double m0 = std::exp2(-max_bias / static_cast<double>(n));
  const double m1 = std::exp2(-max_bias / static_cast<double>(2 * n));
  return h < n ? std::pow(m0, static_cast<double>(h + 1))
               : std::pow(m1, static_cast<double>(2 * (h - n) + 1));
}

namespace {
bool IsFloatOrQ8(DType t) { return IsFloat(t) || t == DType::kQ8_0; }
}  // namespace

absl::StatusOr<FlashAttnParams> ResolveFlashAttn(const ParamContext& ctx) {
  if (!ctx.status().ok()) return ctx.status();
  const TensorLayout& q = ctx.input(kFlashAttnQ);
  const TensorLayout& k = ctx.input(kFlashAttnK);
  const TensorLayout& v = ctx.input(kFlashAttnV);
  const TensorLayout& mask = ctx.input(kFlashAttnMask);
  const TensorLayout& sinks = ctx.input(kFlashAttnSinks);
  if (!q.present || !k.present || !v.present) return ctx.Error("needs inputs q, k and v");

  if (q.rank != 4) return ctx.InputError(kFlashAttnQ, "must be [B,Sq,Hq,Dk]");
  if (!IsFloat(q.dtype)) return ctx.InputError(kFlashAttnQ, "must be f32, f16 or bf16");
  FlashAttnParams p;
  const int64_t B = q.dims[0], Sq = q.dims[1], Hq = q.dims[2], Dk = q.dims[3];
  if (Hq < 1 || Dk < 1) return ctx.InputError(kFlashAttnQ, "needs Hq >= 1 and Dk >= 1");

  if (k.rank != 4) return ctx.InputError(kFlashAttnK, "must be [B,Skv,Hkv,Dk]");
  if (!IsFloatOrQ8(k.dtype)) return ctx.InputError(kFlashAttnK, "must be f32, f16, bf16 or q8_0");
  const int64_t Skv = k.dims[1], Hkv = k.dims[2];
  if (k.dims[0] != B || k.dims[3] != Dk) {
    return ctx.InputError(kFlashAttnK, absl::StrCat("must be [B,Skv,Hkv,Dk] with B=", B,
                                                    " and Dk=", Dk, " as in q"));
  }
  if (Hkv < 1 || Hq % Hkv != 0) {
    return ctx.InputError(kFlashAttnK, absl::StrCat("its ", Hkv, " heads must divide the ", Hq,
                                                    " query heads (Hq % Hkv == 0)"));
  }

  if (v.rank != 4) return ctx.InputError(kFlashAttnV, "must be [B,Skv,Hkv,Dv]");
  if (!IsFloatOrQ8(v.dtype)) return ctx.InputError(kFlashAttnV, "must be f32, f16, bf16 or q8_0");
  const int64_t Dv = v.dims[3];
  if (v.dims[0] != B || v.dims[1] != Skv || v.dims[2] != Hkv) {
    return ctx.InputError(kFlashAttnV, absl::StrCat("must be [B,Skv,Hkv,Dv] with B=", B, ", Skv=",
                                                    Skv, ", Hkv=", Hkv, " as in k"));
  }
  if (Dv < 1) return ctx.InputError(kFlashAttnV, "needs Dv >= 1");

  if (mask.present) {
    if (mask.dtype != DType::kF32 && mask.dtype != DType::kF16) {
      return ctx.InputError(kFlashAttnMask, "must be f16 or f32");
    }
    const auto& m = mask.dims;
    if (mask.rank != 4 || (m[0] != 1 && m[0] != B) || (m[1] != 1 && m[1] != Hq) || m[2] != Sq ||
        m[3] != Skv) {
      return ctx.InputError(kFlashAttnMask,
                            absl::StrCat("must be [Bm,Hm,Sq,Skv] with Bm in {1,", B, "}, Hm in {1,",
                                         Hq, "}, Sq=", Sq, ", Skv=", Skv));
    }
    p.mask_b = m[0];
    p.mask_h = m[1];
  }
  if (sinks.present) {
    if (sinks.dtype != DType::kF32) return ctx.InputError(kFlashAttnSinks, "must be f32");
    if (sinks.rank != 1 || sinks.dims[0] != Hq) {
      return ctx.InputError(kFlashAttnSinks, absl::StrCat("must be [Hq] = [", Hq, "]"));
    }
  }

  const Node& node = ctx.node();
  p.max_bias = node.GetFloat("max_bias");
  if (p.max_bias > 0 && !mask.present) {
    return ctx.Error("attribute 'max_bias' > 0 (ALiBi) needs a mask input");
  }
  const std::string& out_name = node.GetString("out_dtype");
  auto out_dtype = ParseDType(out_name.empty() ? absl::string_view("f32") : absl::string_view(out_name));
  if (!out_dtype.ok()) return ctx.Error(out_dtype.status().message());
  if (!IsFloat(*out_dtype)) return ctx.Error("attribute 'out_dtype' must be f32, f16 or bf16");
  const int64_t out_dims[4] = {B, Sq, Hq, Dv};
  if (auto st = CheckOutput(ctx, kFlashAttnOut, *out_dtype, out_dims); !st.ok()) return st;

  p.B = B, p.Sq = Sq, p.Skv = Skv, p.Hq = Hq, p.Hkv = Hkv, p.Dk = Dk, p.Dv = Dv;
  p.gqa = Hq / Hkv;
  p.has_mask = mask.present;
  p.has_sinks = sinks.present;
  p.causal = node.GetBool("causal");
  p.scale = EffectiveScale(node, Dk);
  p.softcap = node.GetFloat("softcap");
  if (p.max_bias > 0) {
    p.alibi_n = int64_t{1} << static_cast<int>(std::floor(std::log2(static_cast<double>(Hq))));
    p.alibi_m0 = std::exp2(-p.max_bias / static_cast<double>(p.alibi_n));
    p.alibi_m1 = std::exp2(-p.max_bias / static_cast<double>(2 * p.alibi_n));
  }
  p.q = q, p.k = k, p.v = v, p.mask = mask, p.sinks = sinks;
  p.out = ctx.has_outputs() ? ctx.output(kFlashAttnOut) : LayoutOf(*out_dtype, out_dims);
  return p;
}

absl::StatusOr<FlashAttnParams> ResolveFlashAttn(const Graph& graph, const Node& node) {
  return ResolveFlashAttn(ParamContext(graph, node));
}

absl::StatusOr<FlashAttnParams> ResolveFlashAttn(const Node& node,
                                                 absl::Span<const TensorView> inputs,
                                                 absl::Span<const TensorView> outputs) {
  return ResolveFlashAttn(ParamContext(node, inputs, outputs));
}

namespace {

// A node may list fewer inputs than the schema when trailing optional ones
// are absent; those read as absent views.
TensorView OptionalInput(absl::Span<const TensorView> inputs, int i) {
  return i < static_cast<int>(inputs.size()) ? inputs[i] : TensorView{};
}

absl::Status InferFlashAttn(InferContext& ctx) {
  auto p = ResolveFlashAttn(ParamContext(ctx));
  if (!p.ok()) return p.status();
  ctx.outputs = {TensorType{p->out.dtype, {p->B, p->Sq, p->Hq, p->Dv}}};
  return absl::OkStatus();
}

absl::Status ReferenceFlashAttn(const Node& node, absl::Span<const TensorView> inputs,
                                absl::Span<const TensorView> outputs) {
  auto params = ResolveFlashAttn(node, inputs, outputs);
  if (!params.ok()) return params.status();
  const FlashAttnParams& p = *params;
  const TensorView& q = inputs[kFlashAttnQ];
  const TensorView& k = inputs[kFlashAttnK];
  const TensorView& v = inputs[kFlashAttnV];
  const TensorView mask = OptionalInput(inputs, kFlashAttnMask);
  const TensorView sinks = OptionalInput(inputs, kFlashAttnSinks);
  const TensorView& out = outputs[kFlashAttnOut];

  const int64_t B = p.B, Sq = p.Sq, Hq = p.Hq, Dk = p.Dk, Skv = p.Skv, Dv = p.Dv;
  const double scale = p.scale, softcap = p.softcap;
  const bool causal = p.causal;
  const double kNegInf = -std::numeric_limits<double>::infinity();

  std::vector<double> s(Skv);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t kvh = p.kv_head(h);
      const double slope = p.slope(h);
      for (int64_t i = 0; i < Sq; ++i) {
        // Logits s_ij, and their maximum M (with the sink, a raw logit).
        double M = kNegInf;
        for (int64_t j = 0; j < Skv; ++j) {
          // A masked key (-inf) is not read at all: backends skip masked
          // tiles, so unwritten cache cells (even NaN) must not matter.
          double m = 0;
          if (mask.present()) {
            const int64_t mi[4] = {b % p.mask_b, h % p.mask_h, i, j};
            m = LoadElement(mask, mi);
          }
          if ((causal && CausalMasked(i, j, Sq, Skv)) || m == kNegInf) {
            s[j] = kNegInf;
            continue;
          }
          double dot = 0;
          for (int64_t d = 0; d < Dk; ++d) {
            const int64_t qi[4] = {b, i, h, d}, ki[4] = {b, j, kvh, d};
            dot += LoadElement(q, qi) * LoadElement(k, ki);
          }
          double sij = scale * dot;
          if (softcap > 0) sij = softcap * std::tanh(sij / softcap);
          sij += slope * m;
          s[j] = sij;
          M = std::max(M, sij);
        }
        double sink = kNegInf;
        if (sinks.present()) {
          const int64_t si[1] = {h};
          sink = LoadElement(sinks, si);
          M = std::max(M, sink);
        }

        // Every logit -inf (and no finite sink): den == 0, the row is zeros.
        // Checked here so that exp(-inf - -inf) never makes a NaN.
        double den = 0;
        if (M != kNegInf) {
          for (int64_t j = 0; j < Skv; ++j) den += std::exp(s[j] - M);
          if (sinks.present()) den += std::exp(sink - M);
        }
        for (int64_t d = 0; d < Dv; ++d) {
          double acc = 0;
          if (den != 0) {
            for (int64_t j = 0; j < Skv; ++j) {
              if (s[j] == kNegInf) continue;  // masked: V is not read either
              const int64_t vi[4] = {b, j, kvh, d};
              acc += std::exp(s[j] - M) * LoadElement(v, vi);
            }
            acc /= den;
          }
          const int64_t oi[4] = {b, i, h, d};
          StoreElement(out, oi, acc);
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterFlashAttnOps(std::vector<OpSchema>& ops) {
  constexpr double kFiniteMax = std::numeric_limits<double>::max();  // rejects inf
  OpSchema s;
  s.name = "flash_attn";
  s.inputs = {{"q"}, {"k"}, {"v"}, {"mask", true}, {"sinks", true}};
  s.outputs = {"out"};
  s.attrs = {
      {"scale", AttrType::kFloat, AttrValue(0.0), 0.0, kFiniteMax},
      {"softcap", AttrType::kFloat, AttrValue(0.0), 0.0, kFiniteMax},
      {"max_bias", AttrType::kFloat, AttrValue(0.0), 0.0, kFiniteMax},
      {"causal", AttrType::kBool, AttrValue(false)},
      {"out_dtype", AttrType::kString, AttrValue(std::string("f32")), -kFiniteMax, kFiniteMax,
       {"f32", "f16", "bf16"}},
  };
  s.infer = InferFlashAttn;
  s.reference = ReferenceFlashAttn;
  s.tolerance = kReductionTolerance;
  ops.push_back(std::move(s));
}

}  // namespace kiln
