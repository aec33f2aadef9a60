// A pass over a serialized Graph that counts its elements before protobuf
// builds anything. Parsing costs memory per element (a 2-byte empty message
// becomes a heap object of ~100 bytes), so without this a hostile file could
// ask for tens of times its size in memory before any count was checked.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/graph_io.h"

namespace kiln {

// Enforces LoadOptions' count caps (tensors, nodes, graph inputs/outputs/
// states, metadata, node inputs/outputs, attributes, int-list values) and
// max_elements (fields and repeated values at every level, unknown fields
// included). Malformed wire data is reported as a parse failure.
absl::Status ScanGraphWire(absl::string_view bytes, const LoadOptions& options);

}  // namespace kiln
