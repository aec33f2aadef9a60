// CPU kernel of rope (ops/rope.h): per token, the cos/sin of each pair's
// angle are computed once in double (positions can be large) and applied to
// every head of that token in f32.
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"
#include "ops/rope.h"

namespace kiln::cpu {
namespace {

// Rotates pairs (a_i, b_i) of `row` in place: a' = a c - b s, b' = a s + b c.
template <bool kInterleaved>
void RotateRow(float* row, const float* cos, const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const int64_t a = kInterleaved ? 2 * i : i;
    const int64_t b = kInterleaved ? 2 * i + 1 : i + half;
    const float xa = row[a], xb = row[b];
    row[a] = xa * cos[i] - xb * sin[i];
    row[b] = xa * sin[i] + xb * cos[i];
  }
}

template <bool kInterleaved>
absl::Status RopeKernel(const KernelArgs& args) {
  const TensorView& x = args.inputs[kRopeX];
  const TensorView& pos = args.inputs[kRopePositions];
  const TensorView& y = args.outputs[0];
  auto params = ResolveRope(*args.node, args.inputs, args.outputs);
  if (!params.ok()) return params.status();
  const RopeParams& prm = *params;
  const int64_t B = prm.B, T = prm.T, H = prm.H, D = prm.D, half = prm.half;
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = prm.inv_freq(i);
  const int64_t tokens = B * T;
  ParallelFor(
      tokens, ThreadsFor(tokens * H * D * 2 + tokens * half * 32, args.threads), [&](int64_t bt_begin, int64_t bt_end) {
        std::vector<float> cos(half), sin(half), row(D);
        for (int64_t bt = bt_begin; bt < bt_end; ++bt) {
          const int64_t b = bt / T, t = bt % T;
          const std::byte* pp =
              prm.positions_per_batch ? pos.data + b * pos.strides[0] + t * pos.strides[1] : pos.data + t * pos.strides[0];
          int32_t p;
          std::memcpy(&p, pp, 4);
          for (int64_t i = 0; i < half; ++i) {
            const double angle = p * inv_freq[i];
            cos[i] = static_cast<float>(std::cos(angle));
            sin[i] = static_cast<float>(std::sin(angle));
          }
          for (int64_t h = 0; h < H; ++h) {
            const std::byte* src = x.data + b * x.strides[0] + t * x.strides[1] + h * x.strides[2];
            std::byte* dst = y.data + ((b * T + t) * H + h) * RowBytes(y.dtype, D);
            LoadRow(x.dtype, src, D, row.data());
            RotateRow<kInterleaved>(row.data(), cos.data(), sin.data(), half);
            StoreRow(y.dtype, row.data(), D, dst);
          }
        }
      });
  return absl::OkStatus();
}

absl::StatusOr<CpuPipeline> SelectRope(const Graph& graph, const Node& node) {
  auto p = ResolveRope(graph, node);
  if (!p.ok()) return p.status();
  const bool interleaved = p->interleaved;
  return CpuPipeline{absl::StrCat("rope[", DTypeName(graph.tensors[node.inputs[kRopeX]].dtype),
                                  interleaved ? ",interleaved" : ",neox", "]"),
                     interleaved ? RopeKernel<true> : RopeKernel<false>};
}

Support Yes(const Graph&, const Node&) { return Support::Yes(); }

}  // namespace

void RegisterCpuRopeKernels(std::vector<CpuKernelEntry>& k) { k.push_back({"rope", Yes, SelectRope}); }

}  // namespace kiln::cpu
