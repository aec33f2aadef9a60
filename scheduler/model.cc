#include "scheduler/model.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kiln {

Model::Model(std::vector<std::shared_ptr<Backend>> backends, ExecutableOptions options)
    : backends_(std::move(backends)), options_(std::move(options)),
      resources_(std::make_shared<ModelResources>()) {
  options_.resources = resources_;
}

absl::StatusOr<Executable*> Model::Add(absl::string_view entry, Graph graph) {
  if (Find(entry)) {
    return absl::AlreadyExistsError(absl::StrCat("the model already has an entry '", absl::CHexEscape(entry), "'"));
  }
  auto exe = Executable::Create(std::move(graph), backends_, options_);
  if (!exe.ok()) {
    return absl::Status(exe.status().code(), absl::StrCat("entry '", absl::CHexEscape(entry), "': ",
                                                          exe.status().message()));
  }
  entries_.emplace_back(std::string(entry), std::move(*exe));
  return entries_.back().second.get();
}

Executable* Model::Find(absl::string_view entry) const {
  for (const auto& [name, exe] : entries_) {
    if (name == entry) return exe.get();
  }
  return nullptr;
}

std::vector<std::string> Model::entries() const {
  std::vector<std::string> names;
  for (const auto& e : entries_) names.push_back(e.first);
  return names;
}

}  // namespace kiln
