#include "scheduler/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

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

double Executable::NowUs() const {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - origin_).count();
}

absl::Status Executable::Init(const ExecutableOptions& options) {
  origin_ = std::chrono::steady_clock::now();
  profiling_ = options.profile;
  tracing_ = options.trace;
  const int num_backends = static_cast<int>(backends_.size());
  std::vector<Backend*> raw;
  for (const auto& b : backends_) raw.push_back(b.get());
  auto plan = PlanExecution(graph_, raw, {options.placement, options.memory});
  if (!plan.ok()) return plan.status();
  plan_ = std::move(*plan);
  const MemoryPlan& mem = plan_.memory;

  const int num_tensors = static_cast<int>(graph_.tensors.size());
  home_.assign(num_tensors, Binding{});
  pending_.assign(num_backends, 0);
  constant_on_.resize(num_backends);

  // One arena per backend that holds node outputs or copies.
  arenas_.resize(num_backends);
  for (int b = 0; b < num_backends; ++b) {
    if (mem.arenas[b].blocks.empty()) continue;
    const int64_t bytes = mem.arenas[b].peak_bytes;
    auto arena = backends_[b]->Allocate(static_cast<size_t>(bytes));
    if (!arena.ok()) {
      return WithContext(arena.status(), absl::StrCat("allocating the ", bytes, "-byte arena on ",
                                                      backends_[b]->name()));
    }
    arenas_[b] = std::move(*arena);
  }

  // Inputs and states: a buffer each, on the backend holding them. States
  // start as zeros.
  std::vector<bool> is_state(num_tensors, false);
  for (const StatePair& s : graph_.states) is_state[s.input] = true;
  for (int id : graph_.inputs) {
    const TensorInfo& t = graph_.tensors[id];
    const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
    InputSlot slot;
    slot.tensor = id;
    slot.is_state = is_state[id];
    slot.backend = backends_[mem.tensors[id].backend].get();
    auto buffer = slot.backend->Allocate(static_cast<size_t>(bytes));
    if (!buffer.ok()) return WithContext(buffer.status(), absl::StrCat("allocating input ", Describe(t)));
    slot.buffer = std::move(*buffer);
    if (slot.is_state) {
      // In chunks: a whole-size buffer of zeros would be one more host copy.
      const std::vector<std::byte> zeros(static_cast<size_t>(std::min<int64_t>(bytes, 1 << 20)));
      for (int64_t at = 0; at < bytes; at += static_cast<int64_t>(zeros.size())) {
        const size_t n = static_cast<size_t>(std::min<int64_t>(bytes - at, static_cast<int64_t>(zeros.size())));
        if (auto st = slot.backend->Upload(*slot.buffer, static_cast<size_t>(at), zeros.data(), n); !st.ok()) {
          return WithContext(st, absl::StrCat("zeroing state ", Describe(t)));
        }
      }
      slot.set = true;
    }
    home_[id] = {slot.buffer.get(), 0};
    input_index_[t.name] = static_cast<int>(inputs_.size());
    inputs_.push_back(std::move(slot));
  }
  if (auto st = BindConstants(options.wrap_constants); !st.ok()) return st;

  // Node outputs in their backend's arena (in-place ones at their root's
  // bytes), then views at their base's binding plus the view offset.
  for (int id = 0; id < num_tensors; ++id) {
    const TensorStorage& st = mem.tensors[id];
    if (graph_.tensors[id].is_view()) continue;
    if (st.kind == StorageKind::kArena) {
      home_[id] = {arenas_[st.backend].get(), static_cast<size_t>(st.offset)};
    } else if (st.kind == StorageKind::kConstant) {
      home_[id] = {constant_on_[st.backend][id], 0};
    } else if (st.root != id) {  // computed in place over an input or a state
      home_[id] = home_[st.root];
    }
  }
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = graph_.tensors[id];
    if (!t.is_view()) continue;
    Binding b = home_[t.view_of];
    b.offset += static_cast<size_t>(t.offset);
    home_[id] = b;
  }

  // State next values not computed in place: copied back after each run
  // (on one backend: a state lives where its next value is computed).
  for (size_t i = 0; i < graph_.states.size(); ++i) {
    if (mem.state_in_place[i]) continue;
    const StatePair& s = graph_.states[i];
    const TensorInfo& t = graph_.tensors[s.input];
    CopyOp op;
    op.tensor = s.input;
    op.from = mem.tensors[s.output].backend;
    op.to = mem.tensors[s.input].backend;
    op.src = home_[s.output].buffer;
    op.src_offset = home_[s.output].offset;
    op.dst = home_[s.input].buffer;
    op.dst_offset = home_[s.input].offset;
    op.bytes = static_cast<size_t>(ContiguousBytes(t.dtype, t.dims));
    state_copies_.push_back(op);
  }

  // What GetOutput may read: graph outputs, and states by their input's name.
  for (int id : graph_.outputs) readable_[graph_.tensors[id].name] = id;
  for (const StatePair& s : graph_.states) readable_[graph_.tensors[s.input].name] = s.input;

  if (auto st = PrepareSplits(); !st.ok()) return st;

  node_profile_.resize(graph_.nodes.size());
  for (size_t ni = 0; ni < graph_.nodes.size(); ++ni) {
    NodeProfile& p = node_profile_[ni];
    p.node = static_cast<int>(ni);
    p.name = graph_.nodes[ni].name;
    p.op = graph_.nodes[ni].op;
    p.backend = std::string(backends_[plan_.placement.node_backend[ni]]->name());
  }
  timings_.reserve(graph_.nodes.size());
  return absl::OkStatus();
}

// Constants: on every backend that reads them, wrapped where the backend
// can use the host memory, else uploaded once.
absl::Status Executable::BindConstants(bool wrap) {
  const MemoryPlan& mem = plan_.memory;
  for (int id = 0; id < static_cast<int>(graph_.tensors.size()); ++id) {
    const TensorInfo& t = graph_.tensors[id];
    if (!t.is_constant()) continue;
    std::vector<int> on = mem.constant_backends[id];
    if (on.empty()) on.push_back(mem.tensors[id].backend);  // unread: kept for completeness
    const ConstantData& c = *t.constant;
    for (int b : on) {
      Backend& backend = *backends_[b];
      absl::StatusOr<std::unique_ptr<Buffer>> buffer = absl::UnimplementedError("");
      if (wrap && reinterpret_cast<uintptr_t>(c.data) % kWrapAlignment == 0) {
        buffer = backend.WrapHost(c.data, c.size);
      }
      if (!buffer.ok()) {
        buffer = backend.Allocate(c.size);
        if (!buffer.ok()) {
          return WithContext(buffer.status(),
                             absl::StrCat("allocating constant ", Describe(t), " on ", backend.name()));
        }
        if (auto st = backend.Upload(**buffer, 0, c.data, c.size); !st.ok()) {
          return WithContext(st, absl::StrCat("uploading constant ", Describe(t), " to ", backend.name()));
        }
      }
      constant_on_[b][id] = buffer->get();
      constants_.push_back(std::move(*buffer));
    }
  }
  return absl::OkStatus();
}

// Prepares each split with bindings of its own backend only: home bindings
// of tensors it holds, its copies of constants, and the arena copies of
// tensors transferred in.
absl::Status Executable::PrepareSplits() {
  const MemoryPlan& mem = plan_.memory;
  Bindings local;
  local.tensors.assign(graph_.tensors.size(), Binding{});
  std::vector<int> bound;                    // ids to clear after each split
  absl::flat_hash_map<int, int> transferred;  // tensor id -> transfer, in this split
  size_t next_transfer = 0;
  for (size_t si = 0; si < plan_.placement.splits.size(); ++si) {
    const Placement::SplitPlan& sp = plan_.placement.splits[si];
    const int b = sp.backend;
    Backend* backend = backends_[b].get();
    PreparedRun run;
    run.backend = b;
    transferred.clear();
    for (; next_transfer < mem.transfers.size() && mem.transfers[next_transfer].split == static_cast<int>(si);
         ++next_transfer) {
      const TransferPlan& tp = mem.transfers[next_transfer];
      transferred[tp.tensor] = static_cast<int>(next_transfer);
      CopyOp op;
      op.tensor = tp.tensor;
      op.transfer = static_cast<int>(next_transfer);
      op.from = tp.from;
      op.to = tp.to;
      op.src = home_[tp.tensor].buffer;
      op.src_offset = home_[tp.tensor].offset;
      op.dst = arenas_[tp.to].get();
      op.dst_offset = static_cast<size_t>(tp.offset);
      op.bytes = static_cast<size_t>(tp.bytes);
      run.transfers_in.push_back(op);
      if (!op.src->host_data() && !op.dst->host_data()) staging_.resize(std::max(staging_.size(), op.bytes));
    }
    auto bind = [&](int id) -> absl::Status {
      if (id < 0 || local.tensors[id].buffer) return absl::OkStatus();
      const TensorInfo& t = graph_.tensors[id];
      const int root = graph_.StorageOf(id);
      Binding binding;
      if (auto it = transferred.find(id); it != transferred.end()) {
        binding = {arenas_[b].get(), static_cast<size_t>(mem.transfers[it->second].offset)};
      } else if (mem.tensors[root].kind == StorageKind::kConstant) {
        binding = {constant_on_[b].at(root), static_cast<size_t>(t.offset)};
      } else if (mem.tensors[id].backend == b) {
        binding = home_[id];
      } else {
        return absl::InternalError(absl::StrCat("tensor ", Describe(t), " is held by ",
                                                backends_[mem.tensors[id].backend]->name(),
                                                " but was not planned a transfer to ", backend->name()));
      }
      local.tensors[id] = binding;
      bound.push_back(id);
      return absl::OkStatus();
    };
    for (int ni : sp.nodes) {
      for (const std::vector<int>* ids : {&graph_.nodes[ni].inputs, &graph_.nodes[ni].outputs}) {
        for (int id : *ids) {
          if (auto st = bind(id); !st.ok()) return st;
        }
      }
    }
    PrepareEvent event;
    event.split = static_cast<int>(si);
    event.before = backend->pipeline_stats();
    event.start_us = NowUs();
    auto prepared = backend->Prepare(Split{&graph_, sp.nodes}, local);
    event.duration_us = NowUs() - event.start_us;
    event.after = backend->pipeline_stats();
    if (!prepared.ok()) return WithContext(prepared.status(), absl::StrCat("preparing for ", backend->name()));
    prepare_events_.push_back(event);
    run.split = std::move(*prepared);
    prepared_.push_back(std::move(run));
    for (int id : bound) local.tensors[id] = Binding{};
    bound.clear();
  }
  return absl::OkStatus();
}

Executable::InputSlot* Executable::FindInput(absl::string_view name) {
  auto it = input_index_.find(name);
  return it == input_index_.end() ? nullptr : &inputs_[it->second];
}

absl::Status Executable::Upload(InputSlot& slot, const void* data, size_t bytes) {
  if (auto st = slot.backend->Upload(*slot.buffer, 0, data, bytes); !st.ok()) {
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

absl::Status Executable::DoCopy(const CopyOp& op) {
  Backend& from = *backends_[op.from];
  Backend& to = *backends_[op.to];
  absl::Status st;
  if (op.bytes == 0) {
    // Nothing to copy.
  } else if (op.from == op.to) {
    st = from.Copy(*op.src, op.src_offset, *op.dst, op.dst_offset, op.bytes);
    pending_[op.to] = 1;
  } else {
    // Reading the source needs its producer done; writing the destination's
    // host memory directly needs its readers done (Upload is ordered by the
    // backend itself).
    if (pending_[op.from]) {
      st = from.Wait();
      pending_[op.from] = 0;
    }
    std::byte* dst_host = op.dst->host_data();
    const std::byte* src_host = op.src->host_data();
    if (st.ok() && dst_host && pending_[op.to]) {
      st = to.Wait();
      pending_[op.to] = 0;
    }
    if (!st.ok()) {
    } else if (dst_host) {
      st = from.Download(*op.src, op.src_offset, dst_host + op.dst_offset, op.bytes);
    } else if (src_host) {
      st = to.Upload(*op.dst, op.dst_offset, src_host + op.src_offset, op.bytes);
      pending_[op.to] = 1;
    } else {
      st = from.Download(*op.src, op.src_offset, staging_.data(), op.bytes);
      if (st.ok()) st = to.Upload(*op.dst, op.dst_offset, staging_.data(), op.bytes);
      pending_[op.to] = 1;
    }
  }
  if (!st.ok()) {
    return WithContext(st, absl::StrCat(op.transfer >= 0 ? "transferring " : "updating state ",
                                        Describe(graph_.tensors[op.tensor]), " from ", from.name(), " to ",
                                        to.name()));
  }
  return absl::OkStatus();
}

absl::Status Executable::WaitPending() {
  absl::Status result;
  for (size_t b = 0; b < pending_.size(); ++b) {
    if (!pending_[b]) continue;
    pending_[b] = 0;
    if (absl::Status st = backends_[b]->Wait(); !st.ok() && result.ok()) result = st;
  }
  return result;
}

absl::Status Executable::Run() {
  for (const InputSlot& slot : inputs_) {
    if (!slot.set) {
      return absl::FailedPreconditionError(absl::StrCat(
          "input ", Describe(graph_.tensors[slot.tensor]), " has not been set"));
    }
  }
  has_run_ = false;
  const bool timed = profiling_ || tracing_;
  // On failure, still wait for what was started, then report the failure.
  auto fail = [this](absl::Status st) {
    WaitPending().IgnoreError();
    return st;
  };
  for (size_t si = 0; si < prepared_.size(); ++si) {
    PreparedRun& run = prepared_[si];
    for (const CopyOp& op : run.transfers_in) {
      const double start = tracing_ ? NowUs() : 0;
      if (auto st = DoCopy(op); !st.ok()) return fail(st);
      ++transfer_stats_.count;
      transfer_stats_.bytes += static_cast<int64_t>(op.bytes);
      if (tracing_) run_events_.push_back({RunEvent::kTransfer, op.transfer, start, NowUs() - start});
    }
    timings_.clear();
    const double start = tracing_ ? NowUs() : 0;
    absl::Status st = backends_[run.backend]->Execute(*run.split, timed ? &timings_ : nullptr);
    pending_[run.backend] = 1;
    if (!st.ok()) return fail(st);
    if (tracing_) {
      run_events_.push_back({RunEvent::kSplit, static_cast<int>(si), start, NowUs() - start});
      for (const NodeTiming& t : timings_) {
        run_events_.push_back({RunEvent::kNode, t.node, start + t.start_us, t.duration_us});
      }
    }
    if (!profiling_) continue;
    for (const NodeTiming& t : timings_) {
      if (t.node < 0 || t.node >= static_cast<int>(node_profile_.size())) continue;
      NodeProfile& p = node_profile_[t.node];
      ++p.count;
      p.total_us += t.duration_us;
      p.last_us = t.duration_us;
    }
  }
  if (auto st = WaitPending(); !st.ok()) return st;
  for (size_t i = 0; i < state_copies_.size(); ++i) {
    const double start = tracing_ ? NowUs() : 0;
    if (auto st = DoCopy(state_copies_[i]); !st.ok()) return fail(st);
    if (tracing_) run_events_.push_back({RunEvent::kStateCopy, static_cast<int>(i), start, NowUs() - start});
  }
  if (auto st = WaitPending(); !st.ok()) return st;
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
  const TensorStorage& st = plan_.memory.tensors[id];
  if (!has_run_ && st.kind == StorageKind::kArena) {
    return absl::FailedPreconditionError(
        absl::StrCat("output ", Describe(t), " has no value: no run has completed"));
  }
  const Binding& b = home_[id];
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

Trace Executable::trace() const {
  const MemoryPlan& mem = plan_.memory;
  const int num_backends = static_cast<int>(backends_.size());
  Trace trace;
  // Tracks: one per backend (splits, with their nodes inside), transfers,
  // pipeline compiles.
  for (const auto& b : backends_) trace.tracks.emplace_back(b->name());
  const int transfers = num_backends, compiles = num_backends + 1;
  trace.tracks.push_back("transfers");
  trace.tracks.push_back("pipeline compiles");
  auto split_name = [&](int si) {
    const Placement::SplitPlan& sp = plan_.placement.splits[si];
    return absl::StrCat("split ", si, " (", backends_[sp.backend]->name(), ", ", sp.nodes.size(),
                        sp.nodes.size() == 1 ? " node)" : " nodes)");
  };
  for (const PrepareEvent& e : prepare_events_) {
    const int64_t created = e.after.created - e.before.created;
    TraceEvent t;
    t.name = absl::StrCat("prepare ", split_name(e.split), ": ", created, created == 1 ? " pipeline" : " pipelines",
                          " compiled");
    t.category = "compile";
    t.track = compiles;
    t.start_us = e.start_us;
    t.duration_us = e.duration_us;
    t.args = {{"created", absl::StrCat(created)},
              {"cache_hits", absl::StrCat(e.after.cache_hits - e.before.cache_hits)},
              {"disk_hits", absl::StrCat(e.after.disk_hits - e.before.disk_hits)},
              {"compile_ms", absl::StrCat(e.after.compile_ms - e.before.compile_ms)}};
    trace.events.push_back(std::move(t));
  }
  for (const RunEvent& e : run_events_) {
    TraceEvent t;
    t.start_us = e.start_us;
    t.duration_us = e.duration_us;
    switch (e.kind) {
      case RunEvent::kSplit:
        t.name = split_name(e.index);
        t.category = "split";
        t.track = plan_.placement.splits[e.index].backend;
        break;
      case RunEvent::kNode: {
        const Node& node = graph_.nodes[e.index];
        t.name = node.name;
        t.category = "node";
        t.track = plan_.placement.node_backend[e.index];
        t.args = {{"op", node.op}};
        break;
      }
      case RunEvent::kTransfer: {
        const TransferPlan& tp = mem.transfers[e.index];
        t.name = absl::StrCat(graph_.tensors[tp.tensor].name, " ", backends_[tp.from]->name(), " -> ",
                              backends_[tp.to]->name());
        t.category = "transfer";
        t.track = transfers;
        t.args = {{"bytes", absl::StrCat(tp.bytes)}, {"for", split_name(tp.split)}};
        break;
      }
      case RunEvent::kStateCopy: {
        const CopyOp& op = state_copies_[e.index];
        t.name = absl::StrCat("state ", graph_.tensors[op.tensor].name);
        t.category = "transfer";
        t.track = transfers;
        t.args = {{"bytes", absl::StrCat(op.bytes)}};
        break;
      }
    }
    trace.events.push_back(std::move(t));
  }
  return trace;
}

void Executable::ResetProfile() {
  for (NodeProfile& p : node_profile_) {
    p.count = 0;
    p.total_us = 0;
    p.last_us = 0;
  }
}

}  // namespace kiln
