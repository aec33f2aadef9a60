// CPU kernels of the layout ops (gather, concat, slice, reshape, permute,
// transpose, contiguous): byte copies between strided layouts, so every value
// (i32, NaN payloads) comes through exactly, like the references.
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/strided_copy.h"
#include "ops/layout.h"

namespace kiln::cpu {
namespace {

StridedSide Side(const TensorView& t) { return {t.data, t.strides}; }

absl::Status ContiguousKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  CopyStrided(x.rank, x.dims, ElementSize(x.dtype), Side(x), Side(y), args.threads);
  return absl::OkStatus();
}

// permute and transpose: read x through its strides in the output's order.
absl::Status AxesKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  const std::array<int, kMaxRank> axes = OutputToInputAxes(*args.node, x.rank);
  StridedSide src{x.data, {}};
  for (int d = 0; d < x.rank; ++d) src.strides[d] = x.strides[axes[d]];
  CopyStrided(y.rank, y.dims, ElementSize(x.dtype), src, Side(y), args.threads);
  return absl::OkStatus();
}

absl::Status SliceKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  int axis = 0;
  ResolveAxis(args.node->GetInt("axis"), x.rank, &axis);
  const SliceRange range = NodeSlice(*args.node, x.dims[axis]);
  if (range.length == 0) return absl::OkStatus();
  StridedSide src = Side(x);
  src.data += range.start * x.strides[axis];
  src.strides[axis] *= args.node->GetInt("step");
  CopyStrided(y.rank, y.dims, ElementSize(x.dtype), src, Side(y), args.threads);
  return absl::OkStatus();
}

// Values in row-major order of x, laid out contiguously: y's bytes.
absl::Status ReshapeKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  const int es = ElementSize(x.dtype);
  if (IsDense(x)) {
    std::memcpy(y.data, x.data, x.numel() * es);
    return absl::OkStatus();
  }
  TensorInfo dense;
  dense.dtype = x.dtype;
  dense.dims.assign(x.dims.begin(), x.dims.begin() + x.rank);
  const std::vector<int64_t> strides = ContiguousStrides(x.dtype, dense.dims);
  StridedSide dst{y.data, {}};
  for (int d = 0; d < x.rank; ++d) dst.strides[d] = strides[d];
  CopyStrided(x.rank, x.dims, es, Side(x), dst, args.threads);
  return absl::OkStatus();
}

absl::Status ConcatKernel(const KernelArgs& args) {
  const TensorView& y = args.outputs[0];
  int axis = 0;
  ResolveAxis(args.node->GetInt("axis"), y.rank, &axis);
  int64_t offset = 0;  // where the current input starts along `axis`
  for (const TensorView& x : args.inputs) {
    StridedSide dst = Side(y);
    dst.data += offset * y.strides[axis];
    CopyStrided(x.rank, x.dims, ElementSize(x.dtype), Side(x), dst, args.threads);
    offset += x.dims[axis];
  }
  return absl::OkStatus();
}

absl::Status GatherKernel(const KernelArgs& args) {
  const TensorView& table = args.inputs[kGatherTable];
  const TensorView& ids = args.inputs[kGatherIds];
  const TensorView& y = args.outputs[0];
  const int64_t N = table.dim(0), C = table.dim(1);
  // Every id is checked before anything is written.
  std::vector<int64_t> rows;
  rows.reserve(ids.numel());
  absl::Status status;
  ForEachIndex(ids.rank, ids.dims, [&](const int64_t* i) {
    int32_t id;
    std::memcpy(&id, ids.row(i) + 4 * i[ids.rank - 1], 4);
    if ((id < 0 || id >= N) && status.ok()) {
      status = NodeError(*args.node, absl::StrCat("input 'ids' holds ", id, " at [",
                                                  absl::StrJoin(i, i + ids.rank, ","),
                                                  "], outside the table's rows [0, ", N, ")"));
    }
    rows.push_back(id);
  });
  if (!status.ok()) return status;
  const int64_t n = static_cast<int64_t>(rows.size());
  const int64_t out_row = RowBytes(y.dtype, C);
  const bool dequantize = table.dtype == DType::kQ8_0;
  ParallelFor(n, ThreadsFor(n * C, args.threads), [&](int64_t i_begin, int64_t i_end) {
    for (int64_t i = i_begin; i < i_end; ++i) {
      const std::byte* src = table.data + rows[i] * table.strides[0];
      std::byte* dst = y.data + i * out_row;
      if (dequantize) {
        LoadRow(DType::kQ8_0, src, C, reinterpret_cast<float*>(dst));
      } else {
        std::memcpy(dst, src, out_row);
      }
    }
  });
  return absl::OkStatus();
}

template <KernelFn kFn>
absl::StatusOr<CpuPipeline> Select(const Graph& graph, const Node& node) {
  return CpuPipeline{absl::StrCat(node.op, "[", DTypeName(graph.tensors[node.inputs[0]].dtype), "]"), kFn};
}

Support Yes(const Graph&, const Node&) { return Support::Yes(); }

}  // namespace

void RegisterCpuLayoutKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"gather", Yes, Select<GatherKernel>});
  k.push_back({"concat", Yes, Select<ConcatKernel>});
  k.push_back({"slice", Yes, Select<SliceKernel>});
  k.push_back({"reshape", Yes, Select<ReshapeKernel>});
  k.push_back({"permute", Yes, Select<AxesKernel>});
  k.push_back({"transpose", Yes, Select<AxesKernel>});
  k.push_back({"contiguous", Yes, Select<ContiguousKernel>});
}

}  // namespace kiln::cpu
