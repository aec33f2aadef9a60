#include "backends/backend.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

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
