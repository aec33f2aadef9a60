#include "scheduler/executor.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/validate.h"

namespace kiln {
namespace {

// Host memory a backend can use in place should be at least this aligned
// (what malloc guarantees); anything else is uploaded.
constexpr uintptr_t kWrapAlignment = 16;

absl::Status WithContext(const absl::Status& st, absl::string_view context) {
  return absl::Status(st.code(), absl::StrCat(context, ": ", st.message()));
}

}  // namespace

Executable::~Executable() = default;

absl::StatusOr<std::unique_ptr<Executable>> Executable::Create(
    Graph graph, std::vector<std::shared_ptr<Backend>> backends, const ExecutableOptions& options) {
  if (backends.empty()) return absl::InvalidArgumentError("no backend given");
  for (const auto& b : backends) {
    if (!b) return absl::InvalidArgumentError("a backend in the list is null");
  }
  std::unique_ptr<Executable> exe(new Executable());
  exe->graph_ = std::move(graph);
  exe->backends_ = std::move(backends);
  if (auto st = exe->Init(options); !st.ok()) return st;
  return exe;
}

absl::Status Executable::Init(const ExecutableOptions& options) {
  profiling_ = options.profile;
  if (auto st = ValidateGraph(graph_); !st.ok()) return st;

  std::vector<Backend*> raw;
  for (const auto& b : backends_) raw.push_back(b.get());
  auto placed = PlaceNodes(graph_, raw);
  if (!placed.ok()) return placed.status();
  placement_ = std::move(*placed);
  const std::vector<int> used = placement_.UsedBackends();
  if (used.size() > 1) {
    std::vector<std::string> names;
    for (int b : used) names.emplace_back(backends_[b]->name());
    return absl::UnimplementedError(absl::StrCat(
        "the nodes are placed on ", used.size(), " backends (", absl::StrJoin(names, ", "),
        "); running one graph across backends (transfers) is not implemented yet"));
  }
  const int b0 = used.empty() ? 0 : used[0];
  backend_ = backends_[b0].get();

  auto plan = PlanMemory(graph_, placement_.node_backend, static_cast<int>(backends_.size()),
                         options.memory);
  if (!plan.ok()) return plan.status();
  plan_ = std::move(*plan);

  const int num_tensors = static_cast<int>(graph_.tensors.size());
  bindings_.tensors.assign(num_tensors, Binding{});

  // The arena.
  arenas_.resize(backends_.size());
  {
    const int64_t bytes = plan_.arenas[b0].peak_bytes;
    auto arena = backend_->Allocate(static_cast<size_t>(bytes));
    if (!arena.ok()) {
      return WithContext(arena.status(), absl::StrCat("allocating the ", bytes, "-byte arena on ",
                                                      backend_->name()));
    }
    arenas_[b0] = std::move(*arena);
  }

  // Inputs and states: a buffer each. States start as zeros.
  std::vector<bool> is_state(num_tensors, false);
  for (const StatePair& s : graph_.states) is_state[s.input] = true;
  for (int id : graph_.inputs) {
    const TensorInfo& t = graph_.tensors[id];
    const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
    InputSlot slot;
    slot.tensor = id;
    slot.is_state = is_state[id];
    auto buffer = backend_->Allocate(static_cast<size_t>(bytes));
    if (!buffer.ok()) return WithContext(buffer.status(), absl::StrCat("allocating input ", Describe(t)));
    slot.buffer = std::move(*buffer);
    if (slot.is_state) {
      const std::vector<std::byte> zeros(static_cast<size_t>(bytes));
      if (auto st = backend_->Upload(*slot.buffer, 0, zeros.data(), zeros.size()); !st.ok()) {
        return WithContext(st, absl::StrCat("zeroing state ", Describe(t)));
      }
      slot.set = true;
    }
    bindings_.tensors[id] = {slot.buffer.get(), 0};
    input_index_[t.name] = static_cast<int>(inputs_.size());
    inputs_.push_back(std::move(slot));
  }

  // Constants: wrapped where possible, else uploaded once.
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = graph_.tensors[id];
    if (!t.is_constant()) continue;
    const ConstantData& c = *t.constant;
    absl::StatusOr<std::unique_ptr<Buffer>> buffer = absl::UnimplementedError("");
    if (options.wrap_constants && reinterpret_cast<uintptr_t>(c.data) % kWrapAlignment == 0) {
      buffer = backend_->WrapHost(c.data, c.size);
    }
    if (!buffer.ok()) {
      buffer = backend_->Allocate(c.size);
      if (!buffer.ok()) return WithContext(buffer.status(), absl::StrCat("allocating constant ", Describe(t)));
      if (auto st = backend_->Upload(**buffer, 0, c.data, c.size); !st.ok()) {
        return WithContext(st, absl::StrCat("uploading constant ", Describe(t)));
      }
    }
    bindings_.tensors[id] = {buffer->get(), 0};
    constants_.push_back(std::move(*buffer));
  }

  // Node outputs in the arena (in-place ones at their root's bytes), then
  // views at their base's binding plus the view offset.
  for (int id = 0; id < num_tensors; ++id) {
    const TensorStorage& st = plan_.tensors[id];
    if (graph_.tensors[id].is_view()) continue;
    if (st.kind == StorageKind::kArena) {
      bindings_.tensors[id] = {arenas_[st.backend].get(), static_cast<size_t>(st.offset)};
    } else if (st.root != id) {  // computed in place over an input or a state
      bindings_.tensors[id] = bindings_.tensors[st.root];
    }
  }
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = graph_.tensors[id];
    if (!t.is_view()) continue;
    Binding b = bindings_.tensors[t.view_of];
    b.offset += static_cast<size_t>(t.offset);
    bindings_.tensors[id] = b;
  }

  // State next values not computed in place: copied back after each run.
  for (size_t i = 0; i < graph_.states.size(); ++i) {
    if (plan_.state_in_place[i]) continue;
    const StatePair& s = graph_.states[i];
    const TensorInfo& t = graph_.tensors[s.input];
    state_copies_.push_back({bindings_.tensors[s.output].buffer, bindings_.tensors[s.output].offset,
                             bindings_.tensors[s.input].buffer,
                             static_cast<size_t>(ContiguousBytes(t.dtype, t.dims))});
  }

  // What GetOutput may read: graph outputs, and states by their input's name.
  for (int id : graph_.outputs) readable_[graph_.tensors[id].name] = id;
  for (const StatePair& s : graph_.states) readable_[graph_.tensors[s.input].name] = s.input;

  // Prepare the splits once.
  splits_.reserve(placement_.splits.size());
  for (const Placement::SplitPlan& sp : placement_.splits) {
    splits_.push_back(Split{&graph_, sp.nodes});
  }
  for (size_t i = 0; i < splits_.size(); ++i) {
    Backend* backend = backends_[placement_.splits[i].backend].get();
    auto prepared = backend->Prepare(splits_[i], bindings_);
    if (!prepared.ok()) return WithContext(prepared.status(), absl::StrCat("preparing for ", backend->name()));
    prepared_.push_back({backend, std::move(*prepared)});
  }

  node_profile_.resize(graph_.nodes.size());
  for (size_t ni = 0; ni < graph_.nodes.size(); ++ni) {
    NodeProfile& p = node_profile_[ni];
    p.node = static_cast<int>(ni);
    p.name = graph_.nodes[ni].name;
    p.op = graph_.nodes[ni].op;
    p.backend = std::string(backends_[placement_.node_backend[ni]]->name());
  }
  timings_.reserve(graph_.nodes.size());
  return absl::OkStatus();
}

Executable::InputSlot* Executable::FindInput(absl::string_view name) {
  auto it = input_index_.find(name);
  return it == input_index_.end() ? nullptr : &inputs_[it->second];
}

absl::Status Executable::Upload(InputSlot& slot, const void* data, size_t bytes) {
  if (auto st = backend_->Upload(*slot.buffer, 0, data, bytes); !st.ok()) {
    return WithContext(st, absl::StrCat("setting input '", graph_.tensors[slot.tensor].name, "'"));
  }
  slot.set = true;
  return absl::OkStatus();
}

absl::Status Executable::SetInput(absl::string_view name, const TensorView& value) {
  InputSlot* slot = FindInput(name);
  if (!slot) {
    return absl::NotFoundError(absl::StrCat("the graph has no input named '", name, "'"));
  }
  const TensorInfo& t = graph_.tensors[slot->tensor];
  std::vector<int64_t> dims(value.dims.begin(), value.dims.begin() + std::max(0, std::min(value.rank, kMaxRank)));
  if (value.dtype != t.dtype || dims != t.dims || value.rank != t.rank()) {
    return absl::InvalidArgumentError(absl::StrCat("input ", Describe(t), " was given ",
                                                   DTypeName(value.dtype), " ", ShapeString(dims)));
  }
  const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
  if (bytes > 0 && !value.data) {
    return absl::InvalidArgumentError(absl::StrCat("input ", Describe(t), " was given no data"));
  }
  const std::vector<int64_t> contiguous = ContiguousStrides(t.dtype, t.dims);
  if (std::equal(contiguous.begin(), contiguous.end(), value.strides.begin())) {
    return Upload(*slot, value.data, bytes);
  }
  std::vector<std::byte> packed(static_cast<size_t>(bytes));
  CopyToContiguous(value, packed.data());
  return Upload(*slot, packed.data(), packed.size());
}

absl::Status Executable::SetInput(absl::string_view name, const HostTensor& value) {
  InputSlot* slot = FindInput(name);
  if (!slot) {
    return absl::NotFoundError(absl::StrCat("the graph has no input named '", name, "'"));
  }
  const TensorInfo& t = graph_.tensors[slot->tensor];
  if (value.dtype != t.dtype || value.dims != t.dims) {
    return absl::InvalidArgumentError(absl::StrCat("input ", Describe(t), " was given ",
                                                   DTypeName(value.dtype), " ", ShapeString(value.dims)));
  }
  return SetInputBytes(name, value.data.data(), value.data.size());
}

absl::Status Executable::SetInputBytes(absl::string_view name, const void* data, size_t bytes) {
  InputSlot* slot = FindInput(name);
  if (!slot) {
    return absl::NotFoundError(absl::StrCat("the graph has no input named '", name, "'"));
  }
  const TensorInfo& t = graph_.tensors[slot->tensor];
  const int64_t want = ContiguousBytes(t.dtype, t.dims);
  if (static_cast<int64_t>(bytes) != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("input ", Describe(t), " needs ", want, " bytes, was given ", bytes));
  }
  if (bytes > 0 && !data) {
    return absl::InvalidArgumentError(absl::StrCat("input ", Describe(t), " was given no data"));
  }
  return Upload(*slot, data, bytes);
}

absl::Status Executable::Run() {
  for (const InputSlot& slot : inputs_) {
    if (!slot.set) {
      return absl::FailedPreconditionError(absl::StrCat(
          "input ", Describe(graph_.tensors[slot.tensor]), " has not been set"));
    }
  }
  has_run_ = false;
  for (PreparedRun& run : prepared_) {
    timings_.clear();
    if (auto st = run.backend->Execute(*run.split, profiling_ ? &timings_ : nullptr); !st.ok()) {
      return st;
    }
    for (const NodeTiming& t : timings_) {
      if (t.node < 0 || t.node >= static_cast<int>(node_profile_.size())) continue;
      NodeProfile& p = node_profile_[t.node];
      ++p.count;
      p.total_us += t.duration_us;
      p.last_us = t.duration_us;
    }
  }
  if (auto st = backend_->Wait(); !st.ok()) return st;
  for (const StateCopy& c : state_copies_) {
    if (auto st = backend_->Copy(*c.src, c.src_offset, *c.dst, 0, c.bytes); !st.ok()) {
      return WithContext(st, "updating a state");
    }
  }
  if (!state_copies_.empty()) {
    if (auto st = backend_->Wait(); !st.ok()) return st;
  }
  ++runs_;
  has_run_ = true;
  return absl::OkStatus();
}

absl::StatusOr<HostTensor> Executable::GetOutput(absl::string_view name) const {
  auto it = readable_.find(name);
  if (it == readable_.end()) {
    return absl::NotFoundError(absl::StrCat("the graph has no output or state named '", name, "'"));
  }
  const int id = it->second;
  const TensorInfo& t = graph_.tensors[id];
  const TensorStorage& st = plan_.tensors[id];
  if (!has_run_ && st.kind == StorageKind::kArena) {
    return absl::FailedPreconditionError(
        absl::StrCat("output ", Describe(t), " has no value: no run has completed"));
  }
  const Binding& b = bindings_.tensors[id];
  HostTensor out = HostTensor::Zeros(t.dtype, t.dims);
  const int64_t extent = ExtentBytes(t.dtype, t.dims, t.strides);
  Backend* backend = backends_[st.backend].get();
  if (t.strides == ContiguousStrides(t.dtype, t.dims)) {
    if (auto s = backend->Download(*b.buffer, b.offset, out.data.data(), out.data.size()); !s.ok()) {
      return WithContext(s, absl::StrCat("reading output ", Describe(t)));
    }
    return out;
  }
  // A strided view: fetch the span it touches, then gather it.
  std::vector<std::byte> span(static_cast<size_t>(extent));
  if (auto s = backend->Download(*b.buffer, b.offset, span.data(), span.size()); !s.ok()) {
    return WithContext(s, absl::StrCat("reading output ", Describe(t)));
  }
  CopyToContiguous(TensorView::Of(t, span.data()), out.data.data());
  return out;
}

void Executable::ResetProfile() {
  for (NodeProfile& p : node_profile_) {
    p.count = 0;
    p.total_us = 0;
    p.last_us = 0;
  }
}

}  // namespace kiln
