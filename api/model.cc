// The public Model: entries loaded from files, bytes or builders, prepared
// on backends as one kiln::Model (scheduler/model.h) over shared weights and
// states.
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "api/internal.h"
#include "graph/message_text.h"
#include "models/model_config.h"
#include "proto/graph_io.h"
#include "proto/safe_path.h"

namespace kiln::api {

// ---- RunLock

absl::Status RunLock::Acquire(absl::string_view who) {
  std::unique_lock<std::mutex> lock(mu_);
  if (held_ && submitter_ == std::this_thread::get_id()) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, ": entry ", QuoteName(submitted_entry_),
        " of this model was submitted from this thread and not waited for: Wait() for it first"));
  }
  cv_.wait(lock, [&] { return !held_; });
  held_ = true;
  return absl::OkStatus();
}

void RunLock::MarkSubmitted(std::string entry) {
  std::lock_guard<std::mutex> lock(mu_);
  submitter_ = std::this_thread::get_id();
  submitted_entry_ = std::move(entry);
}

void RunLock::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    submitter_.reset();
  }
  cv_.notify_all();
}

// ---- Model::Impl

Model::Impl::~Impl() {
  for (auto& entry : entries) {
    Entry::Impl& e = Access::Of(*entry);
    if (!e.in_flight || !e.exe) continue;
    try {
      e.exe->Wait().IgnoreError();
    } catch (...) {
    }
    e.in_flight = false;
  }
}

Entry* Model::Impl::Find(absl::string_view name) const {
  for (const auto& e : entries) {
    if (Access::Of(*e).name == name) return e.get();
  }
  return nullptr;
}

std::string Model::Impl::EntryList() const {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(QuoteName(Access::Of(*e).name));
  return names.empty() ? std::string("none") : ShortJoin(names);
}

absl::Status Model::Impl::AddGraph(std::string name, kiln::Graph graph) {
  if (name.empty()) return absl::InvalidArgumentError("an entry name may not be empty");
  if (Find(name)) {
    return absl::AlreadyExistsError(absl::StrCat("the model already has an entry ", QuoteName(name)));
  }
  auto impl = std::make_unique<Entry::Impl>();
  impl->name = name;
  impl->model = this;
  std::vector<bool> is_state(graph.tensors.size(), false);
  for (const kiln::StatePair& s : graph.states) {
    is_state[s.input] = true;
    impl->states.push_back(DescOf(graph.tensors[s.input]));
  }
  for (int id : graph.inputs) {
    if (!is_state[id]) impl->inputs.push_back(DescOf(graph.tensors[id]));
  }
  for (int id : graph.outputs) impl->outputs.push_back(DescOf(graph.tensors[id]));
  impl->metadata = graph.metadata;
  impl->graph = std::move(graph);
  entries.push_back(Access::MakeEntry(std::move(impl)));
  if (model) {
    if (auto st = PrepareEntry(*entries.back()); !st.ok()) {
      entries.pop_back();
      return st;
    }
    Access::Of(*entries.back()).graph.reset();  // its executable holds it
  }
  return absl::OkStatus();
}

absl::Status Model::Impl::PrepareEntry(Entry& entry) {
  Entry::Impl& e = Access::Of(entry);
  auto exe = model->Add(e.name, *e.graph);  // a copy: a failed Prepare may be retried
  if (!exe.ok()) return exe.status();       // names the entry
  e.exe = *exe;
  return absl::OkStatus();
}

// ---- Model

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

namespace {

absl::Status WithFile(const absl::Status& st, absl::string_view what) {
  return absl::Status(st.code(), absl::StrCat(what, ": ", st.message()));
}

absl::StatusOr<kiln::Graph> LoadFile(const std::string& path) {
  auto g = kiln::LoadGraph(path);
  if (!g.ok()) return WithFile(g.status(), absl::StrCat("graph file ", QuoteName(path)));
  return g;
}

absl::StatusOr<kiln::Graph> ParseBytes(std::string_view bytes, const std::string& folder) {
  auto g = kiln::ParseGraph(absl::string_view(bytes.data(), bytes.size()), folder.empty() ? "." : folder);
  if (!g.ok()) return WithFile(g.status(), "serialized graph");
  return g;
}

absl::StatusOr<kiln::Graph> BuildGraph(GraphBuilder& builder) {
  if (auto st = builder.status(); !st.ok()) return st;
  return Access::Of(builder).builder.Build();
}

}  // namespace

absl::StatusOr<Model> Model::Load(const std::string& path) {
  return Guard("Model::Load", [&]() -> absl::StatusOr<Model> {
    auto first = LoadFile(path);
    if (!first.ok()) return first.status();
    // The entries its metadata names, in the folder of the file.
    std::vector<std::pair<std::string, std::string>> more;  // (entry, file)
    for (const auto& [key, value] : first->metadata) {
      if (!absl::StartsWith(key, models::kModelEntryKeyPrefix)) continue;
      more.emplace_back(key.substr(models::kModelEntryKeyPrefix.size()), value);
    }
    std::string folder = std::filesystem::path(path).parent_path().string();
    if (folder.empty()) folder = ".";
    Model m;
    if (auto st = m.impl_->AddGraph(std::string(kFirstEntry), *std::move(first)); !st.ok()) return st;
    for (const auto& [entry, file] : more) {
      const std::string where = absl::StrCat("model ", QuoteName(path), ": metadata ",
                                             QuoteName(absl::StrCat(models::kModelEntryKeyPrefix, entry)), " = ",
                                             QuoteName(file));
      if (entry.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": the entry name is empty"));
      auto resolved = kiln::ResolveInsideFolder(folder, file);
      if (!resolved.ok()) return WithFile(resolved.status(), where);
      auto g = LoadFile(*resolved);
      if (!g.ok()) return WithFile(g.status(), where);
      if (auto st = m.impl_->AddGraph(entry, *std::move(g)); !st.ok()) return WithFile(st, where);
    }
    return m;
  });
}

absl::StatusOr<Model> Model::FromBytes(std::string_view bytes, std::string folder, std::string entry) {
  return Guard("Model::FromBytes", [&]() -> absl::StatusOr<Model> {
    Model m;
    if (auto st = m.AddEntryBytes(std::move(entry), bytes, std::move(folder)); !st.ok()) return st;
    return m;
  });
}

absl::StatusOr<Model> Model::FromBuilder(GraphBuilder builder, std::string entry) {
  return Guard("Model::FromBuilder", [&]() -> absl::StatusOr<Model> {
    Model m;
    if (auto st = m.AddEntry(std::move(entry), std::move(builder)); !st.ok()) return st;
    return m;
  });
}

absl::Status Model::AddEntryFile(std::string entry, const std::string& path) {
  return Guard("Model::AddEntryFile", [&]() -> absl::Status {
    auto g = LoadFile(path);
    if (!g.ok()) return g.status();
    return impl_->AddGraph(std::move(entry), *std::move(g));
  });
}

absl::Status Model::AddEntryBytes(std::string entry, std::string_view bytes, std::string folder) {
  return Guard("Model::AddEntryBytes", [&]() -> absl::Status {
    auto g = ParseBytes(bytes, folder);
    if (!g.ok()) return WithFile(g.status(), absl::StrCat("entry ", QuoteName(entry)));
    return impl_->AddGraph(std::move(entry), *std::move(g));
  });
}

absl::Status Model::AddEntry(std::string entry, GraphBuilder builder) {
  return Guard("Model::AddEntry", [&]() -> absl::Status {
    auto g = BuildGraph(builder);
    if (!g.ok()) return WithFile(g.status(), absl::StrCat("entry ", QuoteName(entry)));
    return impl_->AddGraph(std::move(entry), *std::move(g));
  });
}

absl::Status Model::Prepare(std::vector<Backend> backends, const PrepareOptions& options) {
  return Guard("Model::Prepare", [&]() -> absl::Status {
    Impl& m = *impl_;
    if (m.model) return absl::FailedPreconditionError("Model::Prepare: the model is already prepared");
    if (m.entries.empty()) return absl::FailedPreconditionError("Model::Prepare: the model has no entries");
    if (backends.empty()) return absl::InvalidArgumentError("Model::Prepare: no backends given");
    if (options.profile && !options.allow_profiling) {
      return absl::InvalidArgumentError("Model::Prepare: profile needs allow_profiling");
    }
    std::vector<std::shared_ptr<kiln::Backend>> list;
    for (const Backend& b : backends) {
      const auto& impl = Access::Of(b).backend;
      for (const auto& seen : list) {
        if (seen == impl) {
          return absl::InvalidArgumentError(absl::StrCat("Model::Prepare: backend '", b.name(),
                                                         "' is in the list twice (the same handle)"));
        }
      }
      list.push_back(impl);
    }
    kiln::ExecutableOptions eo;
    eo.profile = options.profile;
    eo.allow_timings = options.allow_profiling;
    eo.wrap_constants = options.wrap_constants;
    eo.placement.strict = options.strict;
    eo.placement.merge_islands = options.merge_islands;
    eo.placement.disabled_ops = options.disabled_ops;

    std::vector<kiln::PipelineStats> before;
    for (const auto& b : list) before.push_back(b->pipeline_stats());
    const auto start = std::chrono::steady_clock::now();
    m.model = std::make_unique<kiln::Model>(list, eo);
    for (auto& e : m.entries) {
      if (auto st = m.PrepareEntry(*e); !st.ok()) {
        for (auto& x : m.entries) Access::Of(*x).exe = nullptr;
        m.model.reset();
        return st;
      }
    }
    for (auto& e : m.entries) Access::Of(*e).graph.reset();  // the executables hold theirs
    m.backends = std::move(backends);
    m.options = options;
    PrepareStats& s = m.stats;
    s = {};
    s.prepare_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    for (size_t i = 0; i < list.size(); ++i) {
      const kiln::PipelineStats after = list[i]->pipeline_stats();
      PrepareStats::PerBackend pb;
      pb.backend = std::string(list[i]->name());
      pb.pipelines.created = after.created - before[i].created;
      pb.pipelines.reused = after.cache_hits - before[i].cache_hits;
      pb.pipelines.loaded_from_disk = after.disk_hits - before[i].disk_hits;
      pb.pipelines.compile_ms = after.compile_ms - before[i].compile_ms;
      pb.pipelines.disk_ms = after.disk_ms - before[i].disk_ms;
      s.backends.push_back(std::move(pb));
    }
    const kiln::WeightStats w = m.model->resources().weight_stats();
    s.weight_bytes_held = w.bytes_held;
    s.weight_bytes_wrapped = w.bytes_wrapped;
    s.weight_bytes_uploaded = w.bytes_uploaded;
    return absl::OkStatus();
  });
}

bool Model::prepared() const { return impl_ && impl_->model != nullptr; }

std::vector<std::string> Model::entries() const {
  std::vector<std::string> names;
  try {
    for (const auto& e : impl_->entries) names.push_back(Access::Of(*e).name);
  } catch (...) {
    names.clear();  // out of host memory
  }
  return names;
}

absl::StatusOr<Entry*> Model::entry(std::string_view name) const {
  return Guard("Model::entry", [&]() -> absl::StatusOr<Entry*> {
    if (!impl_ || impl_->entries.empty()) return absl::NotFoundError("the model has no entries");
    if (name.empty()) return impl_->entries.front().get();
    if (Entry* e = impl_->Find(absl::string_view(name.data(), name.size()))) return e;
    return absl::NotFoundError(absl::StrCat("the model has no entry ", QuoteName(absl::string_view(name.data(), name.size())),
                                            "; its entries: ", impl_->EntryList()));
  });
}

std::vector<TensorDesc> Model::states() const {
  std::vector<TensorDesc> out;
  try {
    for (const auto& e : impl_->entries) {
      for (const TensorDesc& s : Access::Of(*e).states) {
        bool seen = false;
        for (const TensorDesc& o : out) seen = seen || o.name == s.name;
        if (!seen) out.push_back(s);
      }
    }
  } catch (...) {
    out.clear();
  }
  return out;
}

namespace {

// The model's state `name`, checked; the caller holds the run lock.
absl::StatusOr<TensorDesc> FindState(const Model& model, std::string_view name) {
  if (!model.prepared()) {
    return absl::FailedPreconditionError(absl::StrCat("state ", QuoteName(absl::string_view(name.data(), name.size())),
                                                      ": the model is not prepared (call Prepare first)"));
  }
  std::vector<std::string> names;
  for (const TensorDesc& s : model.states()) {
    if (s.name == name) return s;
    names.push_back(QuoteName(s.name));
  }
  return absl::NotFoundError(absl::StrCat("the model has no state ", QuoteName(absl::string_view(name.data(), name.size())),
                                          "; its states: ", names.empty() ? std::string("none") : ShortJoin(names)));
}

}  // namespace

absl::StatusOr<HostArray> Model::ReadState(std::string_view name) const {
  return Guard("Model::ReadState", [&]() -> absl::StatusOr<HostArray> {
    auto desc = FindState(*this, name);
    if (!desc.ok()) return desc.status();
    RunScope scope(impl_->run);
    if (auto st = scope.Acquire("Model::ReadState"); !st.ok()) return st;
    auto t = impl_->model->resources().ReadState(absl::string_view(name.data(), name.size()));
    if (!t.ok()) return t.status();
    return HostArray::Copy(ToPublic(t->dtype), t->dims, t->data.data(), t->data.size());
  });
}

absl::Status Model::ReadState(std::string_view name, void* dst, size_t bytes) const {
  return Guard("Model::ReadState", [&]() -> absl::Status {
    auto desc = FindState(*this, name);
    if (!desc.ok()) return desc.status();
    if (bytes != desc->bytes || (bytes > 0 && dst == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat("state ", QuoteName(desc->name), " is ", desc->bytes,
                                                     " bytes; the destination given is ", dst ? bytes : 0));
    }
    RunScope scope(impl_->run);
    if (auto st = scope.Acquire("Model::ReadState"); !st.ok()) return st;
    auto t = impl_->model->resources().ReadState(absl::string_view(name.data(), name.size()));
    if (!t.ok()) return t.status();
    if (bytes > 0) std::memcpy(dst, t->data.data(), bytes);
    return absl::OkStatus();
  });
}

absl::Status Model::WriteState(std::string_view name, const void* data, size_t bytes) {
  return Guard("Model::WriteState", [&]() -> absl::Status {
    auto desc = FindState(*this, name);
    if (!desc.ok()) return desc.status();
    if (bytes != desc->bytes || (bytes > 0 && data == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat("state ", QuoteName(desc->name), " ", DName(desc->dtype),
                                                     " [", absl::StrJoin(desc->dims, ","), "] is ", desc->bytes,
                                                     " bytes; given ", data ? bytes : 0));
    }
    RunScope scope(impl_->run);
    if (auto st = scope.Acquire("Model::WriteState"); !st.ok()) return st;
    return impl_->model->resources().WriteState(absl::string_view(name.data(), name.size()), data, bytes);
  });
}

absl::Status Model::ZeroState(std::string_view name) {
  return Guard("Model::ZeroState", [&]() -> absl::Status {
    auto desc = FindState(*this, name);
    if (!desc.ok()) return desc.status();
    RunScope scope(impl_->run);
    if (auto st = scope.Acquire("Model::ZeroState"); !st.ok()) return st;
    return impl_->model->resources().ZeroState(absl::string_view(name.data(), name.size()));
  });
}

absl::Status Model::ZeroStates() {
  return Guard("Model::ZeroStates", [&]() -> absl::Status {
    if (!prepared()) return absl::FailedPreconditionError("ZeroStates: the model is not prepared (call Prepare first)");
    RunScope scope(impl_->run);
    if (auto st = scope.Acquire("Model::ZeroStates"); !st.ok()) return st;
    return impl_->model->resources().ZeroStates();
  });
}

std::vector<Backend> Model::backends() const {
  try {
    return impl_->backends;
  } catch (...) {
    return {};
  }
}

absl::StatusOr<PrepareStats> Model::prepare_stats() const {
  return Guard("Model::prepare_stats", [&]() -> absl::StatusOr<PrepareStats> {
    if (!prepared()) return absl::FailedPreconditionError("prepare_stats: the model is not prepared");
    return impl_->stats;
  });
}

}  // namespace kiln::api
