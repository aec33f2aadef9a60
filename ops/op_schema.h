// What an op is: its inputs, outputs, attributes with defaults and ranges,
// dtype/shape inference and the reference implementation (the oracle).
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <utility>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "graph/node.h"
#include "graph/tensor_view.h"

namespace kiln {

enum class AttrType { kBool, kInt, kFloat, kString, kInts };

struct AttrSpec {
  std::string name;
  AttrType type = AttrType::kFloat;
  std::optional<AttrValue> default_value;  // nullopt: required
  double min = -std::numeric_limits<double>::infinity();  // numeric range,
  double max = std::numeric_limits<double>::infinity();   // inclusive
  std::vector<std::string> choices;  // allowed strings, if any
};

struct InputSpec {
  std::string name;
  bool optional = false;
};

// The dtype and dims of a tensor, as inference sees them.
struct TensorType {
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
};

// Inference input and output, with error helpers that name the node and the
// tensors ("node 'attn' (flash_attn): input 'k' (tensor 'kcache' f16 [1,8,4,64]): ...").
class InferContext {
 public:
  InferContext(const Node& node, std::vector<const TensorType*> inputs,
               std::vector<std::string> input_roles,
               std::vector<std::string> input_tensor_names)
      : node_(node), inputs_(std::move(inputs)), roles_(std::move(input_roles)),
        tensor_names_(std::move(input_tensor_names)) {}

  const Node& node() const { return node_; }
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  // nullptr when an optional input is absent.
  const TensorType* input(int i) const {
    return i < num_inputs() ? inputs_[i] : nullptr;
  }
  // The graph tensor bound to input i ("" if unknown), for messages that
  // name two inputs.
  absl::string_view input_tensor_name(int i) const {
    return i < static_cast<int>(tensor_names_.size()) ? absl::string_view(tensor_names_[i]) : "";
  }
  absl::Status Error(absl::string_view msg) const;
  absl::Status InputError(int i, absl::string_view msg) const;

  std::vector<TensorType> outputs;  // inference fills one per output

 private:
  const Node& node_;
  std::vector<const TensorType*> inputs_;
  std::vector<std::string> roles_;
  std::vector<std::string> tensor_names_;
};

using InferFn = absl::Status (*)(InferContext& ctx);
// Inputs: absent optionals have data == nullptr. Outputs are contiguous.
using ReferenceFn = absl::Status (*)(const Node& node,
                                     absl::Span<const TensorView> inputs,
                                     absl::Span<const TensorView> outputs);

// Conformance tolerance of an op (docs/OPS.md): the largest NMSE a backend's
// output may have against the reference, for f32 inputs and for f16, bf16 or
// q8_0 inputs.
struct OpTolerance {
  double f32 = 1e-7;
  double low_precision = 1e-5;  // f16 / bf16 / q8_0

  double For(DType input_dtype) const {
    const bool low = input_dtype != DType::kF32 && input_dtype != DType::kI32;
    return low ? low_precision : f32;
  }
};

// matmul, linear, flash_attn, gated_delta_net: long f32 reductions.
inline constexpr OpTolerance kReductionTolerance{1e-6, 5e-4};

struct OpSchema {
  std::string name;
  std::vector<InputSpec> inputs;
  bool variadic = false;  // the last input repeats (at least once): concat
  std::vector<std::string> outputs;
  std::vector<AttrSpec> attrs;
  InferFn infer = nullptr;
  ReferenceFn reference = nullptr;
  // (input, output) index pairs whose buffers may be the same memory: the
  // op's reference and kernels give the right result when that output
  // aliases that input (a state updated in place: KV cache, GDN state).
  std::vector<std::pair<int, int>> inplace;
  // What conformance allows (default: elementwise, norms, rope, copies).
  OpTolerance tolerance;
};

// Checks a node's attributes against the schema (unknown names, types,
// ranges, choices) and fills in defaults. Messages name the node.
absl::Status NormalizeAttrs(const OpSchema& schema, Node& node);

// "node 'name' (op)" for messages.
std::string NodeLabel(const Node& node);

}  // namespace kiln
