// CPU flash attention (OPS.md): which kernel runs a node. Decode (Sq <=
// kDecodeMaxSq, flash_attn_decode.cc) reads K/V at memory speed; prefill
// (flash_attn_prefill.cc) is GEMM-shaped with query rows in lanes. Both
// take every dtype, head size, mask, flag and stride the op allows; each has
// instances for the common head sizes (KILN_FA_HEAD_SIZES) and a generic one.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/flash_attn_problem.h"
#include "ops/flash_attn.h"

namespace kiln::cpu {
namespace fa {
namespace {

Support SupportsFlashAttn(const Graph& graph, const Node& node) {
  auto p = ResolveFlashAttn(graph, node);
  if (!p.ok()) return Support::No(std::string(p.status().message()));
  // Every dtype the op allows (q f32/f16/bf16; K/V also q8_0; mask f32/f16),
  // any head size, any strides with a contiguous innermost dim.
  return Support::Yes();
}

absl::StatusOr<CpuPipeline> SelectFlashAttn(const Graph& graph, const Node& node) {
  auto p = ResolveFlashAttn(graph, node);
  if (!p.ok()) return p.status();
  const bool decode = p->Sq <= kDecodeMaxSq;
  const VariantTable table = decode ? DecodeVariants() : PrefillVariants();
  const char* kind = decode ? "flash_attn.decode" : "flash_attn.prefill";
  const Variant* generic = nullptr;
  for (size_t i = 0; i < table.size; ++i) {
    const Variant& var = table.begin[i];
    if (var.dk == 0) {
      generic = &var;
    } else if (var.dk == p->Dk && var.dv == p->Dv) {
      return CpuPipeline{absl::StrCat(kind, "[dk=", p->Dk, ",dv=", p->Dv, "]"), var.fn};
    }
  }
  if (!generic) return absl::InternalError("flash_attn: no generic CPU kernel");
  return CpuPipeline{absl::StrCat(kind, "[dk=any,dv=any]"), generic->fn};
}

}  // namespace
}  // namespace fa

void RegisterCpuFlashAttnKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"flash_attn", &fa::SupportsFlashAttn, &fa::SelectFlashAttn});
}

}  // namespace kiln::cpu
