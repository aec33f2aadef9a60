// CPU kernel of write_rows (ops/write_rows.h): out = dst with rows replaced.
// Every row index is checked before anything is written; when out aliases
// dst (a KV cache updated in place) dst is not copied, only the rows are.
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_util.h"
#include "backends/cpu/strided_copy.h"
#include "ops/write_rows.h"

namespace kiln::cpu {
namespace {

absl::Status WriteRowsKernel(const KernelArgs& args) {
  const TensorView& dst = args.inputs[kWriteRowsDst];
  const TensorView& src = args.inputs[kWriteRowsSrc];
  const TensorView& rows = args.inputs[kWriteRowsRows];
  const TensorView& y = args.outputs[0];
  auto params = ResolveWriteRows(*args.node, args.inputs, args.outputs);
  if (!params.ok()) return params.status();
  const int rank = dst.rank;
  const int64_t R = params->R, C = params->C, n = params->n;
  std::vector<int64_t> index(n);
  for (int64_t i = 0; i < n; ++i) {
    int32_t r;
    std::memcpy(&r, rows.data + i * rows.strides[0], 4);
    if (r < 0 || r >= R) {
      return NodeError(*args.node, absl::StrCat("input 'rows' holds ", r, " at [", i,
                                                "], outside dst's rows [0, ", R, ")"));
    }
    index[i] = r;
  }
  const int64_t row_bytes = params->row_bytes;
  if (y.data != dst.data) {
    // q8_0 rows are copied as whole rows of bytes (one "element" per row).
    std::array<int64_t, kMaxRank> dims = dst.dims;
    StridedSide from{dst.data, dst.strides}, to{y.data, y.strides};
    dims[rank - 1] = 1;
    from.strides[rank - 1] = to.strides[rank - 1] = row_bytes;
    CopyStrided(rank, dims, static_cast<int>(row_bytes), from, to, args.threads);
  }
  const int64_t lead = params->lead;
  const bool same_type = !params->convert;
  std::vector<float> buf(same_type ? 0 : C);
  // Sequential in i: with repeated indices the last one wins, as in the reference.
  for (int64_t l = 0; l < lead; ++l) {
    const std::byte* s_base = src.data;
    std::byte* y_base = y.data;
    int64_t rem = l;
    for (int d = rank - 3; d >= 0; --d) {
      const int64_t k = rem % dst.dims[d];
      rem /= dst.dims[d];
      s_base += k * src.strides[d];
      y_base += k * y.strides[d];
    }
    for (int64_t i = 0; i < n; ++i) {
      const std::byte* s = s_base + i * src.strides[rank - 2];
      std::byte* o = y_base + index[i] * y.strides[rank - 2];
      if (same_type) {
        std::memcpy(o, s, row_bytes);
      } else {
        LoadRow(src.dtype, s, C, buf.data());
        StoreRow(y.dtype, buf.data(), C, o);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CpuPipeline> SelectWriteRows(const Graph& graph, const Node& node) {
  return CpuPipeline{absl::StrCat("write_rows[", DTypeName(graph.tensors[node.inputs[kWriteRowsDst]].dtype), ",",
                                  DTypeName(graph.tensors[node.inputs[kWriteRowsSrc]].dtype), "]"),
                     WriteRowsKernel};
}

Support Yes(const Graph&, const Node&) { return Support::Yes(); }

}  // namespace

void RegisterCpuWriteRowsKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"write_rows", Yes, SelectWriteRows});
}

}  // namespace kiln::cpu
