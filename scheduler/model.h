// Model: several graphs (entries such as "prefill" and "decode") prepared on
// the same backends over one set of weights and states (ModelResources).
//
// Prefill a prompt, then decode token after token: both graphs read the
// same device copy of each weight and update the same state buffers (KV
// caches, recurrent and conv states) in place, so switching from one to the
// other moves no state through the host. Reading a state back is explicit
// (resources().ReadState).
//
// Threads: entries are Executables (one thread at a time each); entries
// that share states must not run at the same time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/backend.h"
#include "graph/graph.h"
#include "scheduler/executor.h"
#include "scheduler/resources.h"

namespace kiln {

class Model {
 public:
  // `options` apply to every entry (its `resources` is replaced by the model's).
  explicit Model(std::vector<std::shared_ptr<Backend>> backends, ExecutableOptions options = {});

  // Places, plans and prepares `graph` as entry `entry` (a new name).
  absl::StatusOr<Executable*> Add(absl::string_view entry, Graph graph);
  // The entry of that name, or nullptr.
  Executable* Find(absl::string_view entry) const;
  std::vector<std::string> entries() const;

  ModelResources& resources() const { return *resources_; }
  const std::vector<std::shared_ptr<Backend>>& backends() const { return backends_; }

 private:
  std::vector<std::shared_ptr<Backend>> backends_;
  ExecutableOptions options_;
  std::shared_ptr<ModelResources> resources_;
  std::vector<std::pair<std::string, std::unique_ptr<Executable>>> entries_;
};

}  // namespace kiln
