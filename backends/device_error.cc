#include "backends/device_error.h"

#include "absl/strings/str_cat.h"
#include "ops/op_schema.h"

namespace kiln {

absl::Status DeviceErrorStatus(const Graph& graph, const DeviceErrorRecord& record) {
  if (record.code == kDeviceErrorNone) return absl::OkStatus();
  std::string where = absl::StrCat("node #", record.node);
  const Node* node = record.node < graph.nodes.size() ? &graph.nodes[record.node] : nullptr;
  if (node) where = NodeLabel(*node);
  switch (record.code) {
    case kDeviceErrorIndexOutOfRange:
      return absl::OutOfRangeError(absl::StrCat(where, ": id ", record.value, " at position ", record.position,
                                                " is outside [0, ", record.limit, ")"));
    case kDeviceErrorRowOutOfRange:
      return absl::OutOfRangeError(absl::StrCat(where, ": row ", record.value, " at position ", record.position,
                                                " is outside the destination's [0, ", record.limit, ") rows"));
    default:
      return absl::InternalError(absl::StrCat(where, ": the device reported error code ", record.code));
  }
}

}  // namespace kiln
