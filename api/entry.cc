// The public Entry: one graph of a model, a kiln::Executable behind the
// entry's lock and the model's run lock (see internal.h).
#include <cstring>

#include "absl/strings/str_join.h"
#include "api/internal.h"
#include "graph/message_text.h"
#include "scheduler/npy_input.h"
#include "scheduler/profile.h"

namespace kiln::api {
namespace {

std::string Shape(absl::Span<const int64_t> dims) { return absl::StrCat("[", absl::StrJoin(dims, ","), "]"); }

std::string Names(const std::vector<TensorDesc>& list) {
  std::vector<std::string> names;
  for (const TensorDesc& d : list) names.push_back(QuoteName(d.name));
  return names.empty() ? std::string("none") : ShortJoin(names);
}

}  // namespace

Entry::Entry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Entry::~Entry() = default;

const std::string& Entry::name() const { return impl_->name; }
const std::vector<TensorDesc>& Entry::inputs() const { return impl_->inputs; }
const std::vector<TensorDesc>& Entry::outputs() const { return impl_->outputs; }
const std::vector<TensorDesc>& Entry::states() const { return impl_->states; }
const std::map<std::string, std::string>& Entry::metadata() const { return impl_->metadata; }

namespace {

// "entry 'prefill': " before messages.
std::string Prefix(const Entry::Impl& e) { return absl::StrCat("entry ", QuoteName(e.name), ": "); }

absl::Status CheckPrepared(const Entry::Impl& e) {
  if (e.exe) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(Prefix(e), "the model is not prepared (call Prepare first)"));
}

// Waits (holding `lock` on e.mu) until no submitted run of the entry is
// in flight; FailedPrecondition instead when this thread submitted it.
absl::Status WaitIdle(const Entry::Impl& e, std::unique_lock<std::mutex>& lock, absl::string_view what) {
  while (e.in_flight) {
    if (e.submitter == std::this_thread::get_id()) {
      return absl::FailedPreconditionError(
          absl::StrCat(Prefix(e), what, " while a run submitted from this thread is not waited for: Wait() first"));
    }
    const_cast<std::condition_variable&>(e.idle).wait(lock);
  }
  return absl::OkStatus();
}

// The input or state named `name`, and whether it is a state.
absl::StatusOr<std::pair<const TensorDesc*, bool>> FindBindable(const Entry::Impl& e, std::string_view name) {
  for (const TensorDesc& d : e.inputs) {
    if (d.name == name) return std::make_pair(&d, false);
  }
  for (const TensorDesc& d : e.states) {
    if (d.name == name) return std::make_pair(&d, true);
  }
  return absl::NotFoundError(absl::StrCat(Prefix(e), "no input or state named ", QuoteName(Sv(name)),
                                          "; its inputs: ", Names(e.inputs), "; its states: ", Names(e.states)));
}

absl::Status CheckOutputName(const Entry::Impl& e, std::string_view name) {
  for (const auto* list : {&e.outputs, &e.states}) {
    for (const TensorDesc& d : *list) {
      if (d.name == name) return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat(Prefix(e), "no output or state named ", QuoteName(Sv(name)),
                                          "; its outputs: ", Names(e.outputs), "; its states: ", Names(e.states)));
}

}  // namespace

absl::Status Entry::SetInput(std::string_view name, DType dtype, absl::Span<const int64_t> dims, const void* data,
                             size_t bytes) {
  return Guard("Entry::SetInput", [&]() -> absl::Status {
    Impl& e = *impl_;
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    auto found = FindBindable(e, name);
    if (!found.ok()) return found.status();
    const auto [desc, is_state] = *found;
    const bool dims_match = std::vector<int64_t>(dims.begin(), dims.end()) == desc->dims;
    if (dtype != desc->dtype || !dims_match) {
      return absl::InvalidArgumentError(absl::StrCat(Prefix(e), is_state ? "state " : "input ", QuoteName(desc->name),
                                                     " is ", DName(desc->dtype), " ", Shape(desc->dims),
                                                     "; given ", DName(dtype), " ", Shape(dims)));
    }
    if (bytes != desc->bytes || (bytes > 0 && data == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat(Prefix(e), is_state ? "state " : "input ", QuoteName(desc->name),
                                                     " ", DName(desc->dtype), " ", Shape(desc->dims), " is ",
                                                     desc->bytes, " bytes; given ", data ? bytes : 0));
    }
    // A state is the model's, shared with the other entries: wait for their runs.
    RunScope scope(e.model->run);
    if (is_state) {
      if (auto st = scope.Acquire(Prefix(e) + "SetInput"); !st.ok()) return st;
    }
    std::unique_lock<std::mutex> lock(e.mu);
    if (auto st = WaitIdle(e, lock, "setting an input"); !st.ok()) return st;
    return Annotate(e.exe->SetInputBytes(Sv(name), data, bytes), Prefix(e));
  });
}

absl::Status Entry::SetInput(std::string_view name, const HostArray& value) {
  return SetInput(name, value.dtype(), value.dims(), value.data(), value.size_bytes());
}

absl::Status Entry::SetInputFromNpy(std::string_view name, const std::string& path) {
  return Guard("Entry::SetInputFromNpy", [&]() -> absl::Status {
    Impl& e = *impl_;
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    auto found = FindBindable(e, name);
    if (!found.ok()) return found.status();
    const kiln::Graph& g = e.exe->graph();
    const int id = g.FindTensor(Sv(name));
    if (id < 0) return absl::InternalError(absl::StrCat(Prefix(e), "input ", QuoteName(Sv(name)), " is not in the graph"));
    auto value = kiln::ReadNpyFor(g.tensors[id], path);
    if (!value.ok()) return Annotate(value.status(), Prefix(e));
    RunScope scope(e.model->run);
    if (found->second) {
      if (auto st = scope.Acquire(Prefix(e) + "SetInputFromNpy"); !st.ok()) return st;
    }
    std::unique_lock<std::mutex> lock(e.mu);
    if (auto st = WaitIdle(e, lock, "setting an input"); !st.ok()) return st;
    return Annotate(e.exe->SetInput(Sv(name), *value), Prefix(e));
  });
}

absl::Status Entry::Run() {
  return Guard("Entry::Run", [&]() -> absl::Status {
    Impl& e = *impl_;
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    // The run lock covers a submitted run of this entry too (until its Wait).
    RunScope scope(e.model->run);
    if (auto st = scope.Acquire(Prefix(e) + "Run"); !st.ok()) return st;
    std::lock_guard<std::mutex> lock(e.mu);
    return Annotate(e.exe->Run(), Prefix(e));
  });
}

absl::Status Entry::Submit() {
  return Guard("Entry::Submit", [&]() -> absl::Status {
    Impl& e = *impl_;
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    if (auto st = e.model->run.Acquire(Prefix(e) + "Submit"); !st.ok()) return st;
    std::lock_guard<std::mutex> lock(e.mu);
    absl::Status st;
    try {
      st = e.exe->Submit();
    } catch (...) {
      e.model->run.Release();
      throw;  // Guard turns it into a status
    }
    if (!st.ok()) {
      e.model->run.Release();
      return Annotate(st, Prefix(e));
    }
    e.model->run.MarkSubmitted(e.name);
    e.in_flight = true;
    e.submitter = std::this_thread::get_id();
    return absl::OkStatus();
  });
}

absl::Status Entry::Wait() {
  return Guard("Entry::Wait", [&]() -> absl::Status {
    Impl& e = *impl_;
    std::lock_guard<std::mutex> lock(e.mu);
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    if (!e.in_flight) return absl::FailedPreconditionError(absl::StrCat(Prefix(e), "Wait: no run was submitted"));
    e.in_flight = false;
    absl::Status st;
    try {
      st = e.exe->Wait();
    } catch (...) {
      e.model->run.Release();
      e.idle.notify_all();
      throw;
    }
    e.model->run.Release();
    e.idle.notify_all();
    return Annotate(st, Prefix(e));
  });
}

int64_t Entry::runs() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->exe ? impl_->exe->runs() : 0;
}

absl::StatusOr<HostArray> Entry::GetOutput(std::string_view name) const {
  return Guard("Entry::GetOutput", [&]() -> absl::StatusOr<HostArray> {
    Impl& e = *impl_;
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    if (auto st = CheckOutputName(e, name); !st.ok()) return st;
    // States are shared with the model's other entries, and this entry's own
    // submitted run holds the lock until its Wait: wait for them.
    RunScope scope(e.model->run);
    if (auto st = scope.Acquire(Prefix(e) + "reading an output"); !st.ok()) return st;
    std::lock_guard<std::mutex> lock(e.mu);
    auto t = e.exe->GetOutput(Sv(name));
    if (!t.ok()) return Annotate(t.status(), Prefix(e));
    return Access::MakeArray(*std::move(t));
  });
}

absl::Status Entry::ReadOutput(std::string_view name, void* dst, size_t bytes) const {
  return Guard("Entry::ReadOutput", [&]() -> absl::Status {
    auto a = GetOutput(name);
    if (!a.ok()) return a.status();
    if (a->size_bytes() != bytes || (bytes > 0 && dst == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat(Prefix(*impl_), "output ", QuoteName(Sv(name)), " ",
                                                     DName(a->dtype()), " ", Shape(a->dims()), " is ",
                                                     a->size_bytes(), " bytes; the destination given is ",
                                                     dst ? bytes : 0));
    }
    if (bytes > 0) std::memcpy(dst, a->data(), bytes);
    return absl::OkStatus();
  });
}

absl::StatusOr<absl::Span<std::byte>> Entry::InputBuffer(std::string_view name) {
  return Guard("Entry::InputBuffer", [&]() -> absl::StatusOr<absl::Span<std::byte>> {
    Impl& e = *impl_;
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    auto found = FindBindable(e, name);
    if (!found.ok()) return found.status();
    if (found->second) {
      return absl::InvalidArgumentError(absl::StrCat(Prefix(e), QuoteName(Sv(name)),
                                                     " is a state: set it with SetInput or Model::WriteState"));
    }
    std::unique_lock<std::mutex> lock(e.mu);
    if (auto st = WaitIdle(e, lock, "writing an input"); !st.ok()) return st;
    auto p = e.exe->InputHostData(Sv(name));
    if (!p.ok()) return Annotate(p.status(), Prefix(e));
    if (!*p) {
      return absl::UnimplementedError(absl::StrCat(Prefix(e), "input ", QuoteName(Sv(name)),
                                                   " is in memory the host cannot address; use SetInput"));
    }
    return absl::Span<std::byte>(*p, found->first->bytes);
  });
}

absl::StatusOr<absl::Span<const std::byte>> Entry::OutputBuffer(std::string_view name) const {
  return Guard("Entry::OutputBuffer", [&]() -> absl::StatusOr<absl::Span<const std::byte>> {
    Impl& e = *impl_;
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    const TensorDesc* desc = nullptr;
    for (const TensorDesc& d : e.outputs) {
      if (d.name == name) desc = &d;
    }
    if (!desc) {
      return absl::NotFoundError(absl::StrCat(Prefix(e), "no output named ", QuoteName(Sv(name)),
                                              "; its outputs: ", Names(e.outputs)));
    }
    RunScope scope(e.model->run);  // this entry's submitted run holds it until Wait
    if (auto st = scope.Acquire(Prefix(e) + "reading an output"); !st.ok()) return st;
    std::lock_guard<std::mutex> lock(e.mu);
    auto p = e.exe->OutputHostData(Sv(name));
    if (!p.ok()) return Annotate(p.status(), Prefix(e));
    if (!*p) {
      return absl::UnimplementedError(absl::StrCat(Prefix(e), "output ", QuoteName(Sv(name)),
                                                   " is not contiguous in host-addressable memory; use GetOutput"));
    }
    return absl::Span<const std::byte>(*p, desc->bytes);
  });
}

absl::StatusOr<Plan> Entry::plan() const {
  return Guard("Entry::plan", [&]() -> absl::StatusOr<Plan> {
    if (auto st = CheckPrepared(*impl_); !st.ok()) return st;
    return MakePlan(impl_->name, *impl_->exe);  // fixed by Prepare: no lock needed
  });
}

absl::Status Entry::SetProfiling(bool on) {
  return Guard("Entry::SetProfiling", [&]() -> absl::Status {
    Impl& e = *impl_;
    std::lock_guard<std::mutex> lock(e.mu);
    if (auto st = CheckPrepared(e); !st.ok()) return st;
    if (on && !e.model->options.allow_profiling) {
      return absl::FailedPreconditionError(
          absl::StrCat(Prefix(e), "profiling needs PrepareOptions.allow_profiling, which was false"));
    }
    e.exe->set_profiling(on);
    return absl::OkStatus();
  });
}

absl::StatusOr<Profile> Entry::profile() const {
  return Guard("Entry::profile", [&]() -> absl::StatusOr<Profile> {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (auto st = CheckPrepared(*impl_); !st.ok()) return st;
    return MakeProfile(*impl_->exe);
  });
}

void Entry::ResetProfile() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->exe) impl_->exe->ResetProfile();
}

absl::Status Entry::SetTracing(bool on) {
  return Guard("Entry::SetTracing", [&]() -> absl::Status {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (auto st = CheckPrepared(*impl_); !st.ok()) return st;
    impl_->exe->set_tracing(on);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> Entry::TraceJson() const {
  return Guard("Entry::TraceJson", [&]() -> absl::StatusOr<std::string> {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (auto st = CheckPrepared(*impl_); !st.ok()) return st;
    return kiln::ChromeTraceJson(impl_->exe->trace());
  });
}

// ---- Plan and profile from the executable

Plan MakePlan(const std::string& entry, const kiln::Executable& exe) {
  const kiln::Graph& g = exe.graph();
  const kiln::Placement& p = exe.placement();
  const kiln::MemoryPlan& m = exe.memory_plan();
  Plan plan;
  plan.entry = entry;
  for (const auto& b : exe.backends()) plan.backends.emplace_back(b->name());
  std::vector<int> node_split(g.nodes.size(), -1);
  for (size_t s = 0; s < p.splits.size(); ++s) {
    Plan::Split split;
    split.backend = plan.backends[p.splits[s].backend];
    split.nodes = p.splits[s].nodes;
    for (int n : split.nodes) node_split[n] = static_cast<int>(s);
    plan.splits.push_back(std::move(split));
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    Plan::Node node;
    node.name = g.nodes[n].name;
    node.op = g.nodes[n].op;
    node.backend = plan.backends[p.node_backend[n]];
    node.reason = n < p.node_reason.size() ? p.node_reason[n] : "";
    node.split = node_split[n];
    plan.nodes.push_back(std::move(node));
  }
  for (const kiln::TransferPlan& t : m.transfers) {
    plan.transfers.push_back({g.tensors[t.tensor].name, plan.backends[t.from], plan.backends[t.to], t.split, t.bytes});
  }
  for (size_t b = 0; b < plan.backends.size(); ++b) {
    Plan::Memory mem;
    mem.backend = plan.backends[b];
    if (b < m.arenas.size()) {
      mem.arena_bytes = m.arenas[b].peak_bytes;
      mem.arena_naive_bytes = m.arenas[b].naive_bytes;
    }
    if (b < m.held.size()) {
      mem.input_bytes = m.held[b].inputs;
      mem.state_bytes = m.held[b].states;
      mem.constant_bytes = m.held[b].constants;
    }
    plan.memory.push_back(std::move(mem));
  }
  plan.transfer_bytes_per_run = m.transfer_bytes();
  return plan;
}

Profile MakeProfile(const kiln::Executable& exe) {
  Profile p;
  p.runs = exe.runs();
  for (const kiln::NodeProfile& n : exe.node_profile()) {
    p.nodes.push_back({n.name, n.op, n.backend, n.count, n.total_us, n.last_us});
  }
  for (const kiln::OpProfile& o : exe.op_profile()) p.ops.push_back({o.op, o.backend, o.count, o.total_us});
  return p;
}

}  // namespace kiln::api
