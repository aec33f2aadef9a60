// What every backend needs to address an op's tensors, resolved once from a
// node: TensorLayout (dtype, dims, strides in elements and bytes, view offset)
// and ParamContext, the input the per-op resolvers (ResolveFlashAttn,
// ResolveGatedDeltaNet, ... in the op family headers) read.
//
// A resolver runs from three places, with the same checks and messages:
//   - inference (the op's InferFn: dtypes and dims only, contiguous strides),
//   - a graph (Resolve*(graph, node): a backend's supports() / Prepare; the
//     layouts carry each view's offset and the tensor id of its storage),
//   - kernel views (Resolve*(node, inputs, outputs): the reference and the CPU
//     kernels, once per call; offsets are 0, the views' data already points
//     at the first element).
//
// Strides, outermost dim first, one per dim:
//   - byte_strides: the tensor's own (graph/ and TensorView convention).
//   - strides: in elements, what GPU kernels take together with a buffer and
//     an element offset. For f32/f16/bf16/i32, byte_stride / element size.
//     For q8_0 (blocks of 32 values, 34 bytes: f16 scale + 32 int8, packed
//     along the innermost dim) an element stride counts *values* of the
//     packed block stream: outer byte strides are whole blocks, so
//     stride = byte_stride / 34 * 32, and the innermost stride is 1 (its byte
//     stride is 0 by convention). Value x of that stream (x = sum idx * stride,
//     plus offset) is in block x / 32, at byte (x / 32) * 34 (its scale) and
//     quant byte (x / 32) * 34 + 2 + x % 32. A row therefore starts on a
//     block boundary: row offsets are multiples of 32 values.
//   - element_aligned is false when some byte stride or the byte offset is
//     not a whole number of elements (q8_0: of blocks); strides/offset are
//     then -1 and only byte addressing works (CPU). A GPU backend declines
//     such a node in supports().
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "graph/dtype.h"
#include "graph/graph.h"
#include "graph/tensor.h"
#include "graph/tensor_view.h"

namespace kiln {

class InferContext;
struct OpSchema;

struct TensorLayout {
  bool present = false;  // false: an absent optional input (the rest is zero)
  DType dtype = DType::kF32;
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{};          // outermost first
  std::array<int64_t, kMaxRank> strides{};       // elements (q8_0: values, see above)
  std::array<int64_t, kMaxRank> byte_strides{};  // bytes (q8_0 innermost: 0)
  int64_t offset = 0;       // elements from the start of the storage tensor
  int64_t byte_offset = 0;  // bytes from the start of the storage tensor
  int storage = -1;         // graph tensor id of the storage (itself unless a
                            // view); -1 when not resolved from a graph
  bool element_aligned = true;

  int64_t dim(int i) const { return dims[i < 0 ? rank + i : i]; }
  int64_t stride(int i) const { return strides[i < 0 ? rank + i : i]; }
  int64_t byte_stride(int i) const { return byte_strides[i < 0 ? rank + i : i]; }
  int64_t numel() const;
  // Row-major dense: strides are the running products of the inner dims.
  bool contiguous() const;
  // Element offset of index idx (rank entries) from the storage start.
  int64_t ElementOffset(const int64_t* idx) const;
};

// Layouts of a graph tensor (offset and storage from the view), of a kernel
// view (offset 0), of an inference type (contiguous), or absent.
TensorLayout LayoutOf(const TensorInfo& t, int tensor_id);
TensorLayout LayoutOf(const TensorView& v);
TensorLayout LayoutOf(DType dtype, absl::Span<const int64_t> dims);

// The operands a resolver reads, and the errors it reports. Errors name the
// node and the input as InferContext does ("node 'attn' (flash_attn): input
// 'k' (tensor 'kcache' f16 [1,8,4,64]): ..."); messages are built only on
// error, so a resolver on the kernel path allocates nothing.
class ParamContext {
 public:
  // The most inputs and outputs a resolved op has (gated_delta_net: 6 and 2).
  static constexpr int kMaxInputs = 6;
  static constexpr int kMaxOutputs = 2;

  // From a graph: every input and output of the node (views keep offsets).
  ParamContext(const Graph& graph, const Node& node);
  // From kernel views (absent optional inputs: data == nullptr).
  ParamContext(const Node& node, absl::Span<const TensorView> inputs,
               absl::Span<const TensorView> outputs);
  // From inference: inputs only, contiguous; errors go through ctx.
  explicit ParamContext(const InferContext& ctx);

  const Node& node() const { return *node_; }
  int num_inputs() const { return num_inputs_; }
  int num_outputs() const { return num_outputs_; }
  // Absent (present == false) past the node's inputs/outputs.
  const TensorLayout& input(int i) const;
  const TensorLayout& output(int i) const;
  bool has_outputs() const { return num_outputs_ > 0; }

  absl::Status Error(absl::string_view msg) const;
  absl::Status InputError(int i, absl::string_view msg) const;
  absl::Status OutputError(int i, absl::string_view msg) const;
  // Runs the op schema's inference (every check of the node, with its
  // messages) on the operands, and checks that the outputs are what it
  // infers. Resolvers of the smaller ops (norms, rope, softmax, matmul,
  // linear, conv1d_causal, write_rows) call it on the graph path only: on the
  // kernel path the node was validated when its graph was made, and a
  // resolver there must stay a few loads and stores. OK for other contexts.
  absl::Status CheckWithSchema() const;
  // The setup error when the node had more operands than kMaxInputs /
  // kMaxOutputs or
  // named a missing tensor; OK otherwise. Resolvers check it first.
  const absl::Status& status() const { return status_; }

 private:
  const Node* node_ = nullptr;
  const Graph* graph_ = nullptr;
  const InferContext* infer_ = nullptr;
  int num_inputs_ = 0, num_outputs_ = 0;
  std::array<TensorLayout, kMaxInputs> inputs_{};
  std::array<TensorLayout, kMaxOutputs> outputs_{};
  absl::Status status_;
};

// Checks that a resolved output (when the context has outputs) has the
// inferred dtype and dims. Messages name the output.
absl::Status CheckOutput(const ParamContext& ctx, int i, DType dtype,
                         absl::Span<const int64_t> dims);

}  // namespace kiln
