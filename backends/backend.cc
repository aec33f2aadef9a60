#include "backends/backend.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "ops/op_schema.h"

namespace kiln {
namespace {
constexpr absl::string_view kDeviceLostPayload = "kiln.dev/device-lost";
}  // namespace

absl::string_view BufferUsageName(BufferUsage usage) {
  switch (usage) {
    case BufferUsage::kWeights: return "weights";
    case BufferUsage::kArena: return "arena";
    case BufferUsage::kInput: return "input";
    case BufferUsage::kOutput: return "output";
    case BufferUsage::kState: return "state";
    case BufferUsage::kStaging: return "staging";
  }
  return "buffer";
}

absl::Status DeviceLostError(absl::string_view backend, absl::string_view what) {
  absl::Status st = absl::UnavailableError(absl::StrCat(backend, ": device lost (", what, ")"));
  st.SetPayload(kDeviceLostPayload, absl::Cord("1"));
  return st;
}

bool IsDeviceLost(const absl::Status& status) {
  return status.GetPayload(kDeviceLostPayload).has_value();
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

absl::Status CheckRange(absl::string_view what, size_t size, size_t offset, size_t n) {
  if (offset > size || n > size - offset) {
    return absl::OutOfRangeError(absl::StrCat(what, ": bytes [", offset, ", ", offset, " + ", n,
                                              ") are outside the buffer of ", size, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Binding> ResolveBinding(const Graph& graph, const Node& node, const Bindings& bindings, int id) {
  if (id < 0) return Binding{};
  if (id >= static_cast<int>(graph.tensors.size())) {
    return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": tensor #", id, " does not exist"));
  }
  const TensorInfo& info = graph.tensors[id];
  Binding b;
  if (id < static_cast<int>(bindings.tensors.size())) b = bindings.tensors[id];
  if (!b.buffer && info.is_view()) {
    const int base = info.view_of;
    if (base < static_cast<int>(bindings.tensors.size()) && bindings.tensors[base].buffer) {
      b = bindings.tensors[base];
      b.offset += static_cast<size_t>(info.offset);
    }
  }
  if (!b.buffer) {
    return absl::InvalidArgumentError(
        absl::StrCat(NodeLabel(node), ": tensor ", Describe(info), " is not bound to a buffer"));
  }
  const int64_t extent = ExtentBytes(info.dtype, info.dims, info.strides);
  if (auto st = CheckRange(absl::StrCat(NodeLabel(node), ": tensor ", Describe(info)), b.buffer->size(), b.offset,
                           static_cast<size_t>(extent));
      !st.ok()) {
    return st;
  }
  const int es = ElementSize(info.dtype);
  if (es > 1 && b.offset % es != 0) {
    return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": tensor ", Describe(info), " is bound at offset ",
                                                   b.offset, ", not a multiple of its element size"));
  }
  return b;
}

absl::Status RunPrepared(Backend& backend, PreparedSplit& split, std::vector<NodeTiming>* timings) {
  ExecuteOptions options;
  options.timings = timings != nullptr;
  auto point = backend.Execute(split, options);
  if (!point.ok()) return point.status();
  if (auto st = backend.Wait(*point); !st.ok()) return st;
  if (timings) return backend.ReadTimings(split, timings);
  return absl::OkStatus();
}

}  // namespace kiln
