#include "scheduler/executor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace kiln {
namespace {

absl::Status WithContext(const absl::Status& st, absl::string_view context) { return Annotate(st, context); }

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
  allow_timings_ = options.allow_timings;
  resources_ = options.resources ? options.resources : std::make_shared<ModelResources>();
  const int num_backends = static_cast<int>(backends_.size());
  std::vector<Backend*> raw;
  for (const auto& b : backends_) raw.push_back(b.get());
  auto plan = PlanExecution(graph_, raw, {options.placement, options.memory});
  if (!plan.ok()) return plan.status();
  plan_ = std::move(*plan);
  const MemoryPlan& mem = plan_.memory;

  const int num_tensors = static_cast<int>(graph_.tensors.size());
  home_.assign(num_tensors, Binding{});
  submitted_.assign(num_backends, 0);
  reached_.assign(num_backends, 0);
  inputs_ready_.assign(num_backends, 0);
  constant_on_.resize(num_backends);

  // One arena per backend that holds node outputs or copies.
  arenas_.resize(num_backends);
  for (int b = 0; b < num_backends; ++b) {
    if (mem.arenas[b].blocks.empty()) continue;
    const int64_t bytes = mem.arenas[b].peak_bytes;
    const BackendLimits limits = backends_[b]->limits();
    if (static_cast<uint64_t>(bytes) > limits.max_allocation) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "graph '", graph_.name, "' needs a ", bytes, "-byte arena on ", backends_[b]->name(),
          ", more than the largest allocation it allows (", limits.max_allocation, " bytes)"));
    }
    auto arena = backends_[b]->Allocate(static_cast<size_t>(bytes), BufferUsage::kArena,
                                        absl::StrCat("the arena of graph '", graph_.name, "'"));
    if (!arena.ok()) {
      return WithContext(arena.status(), absl::StrCat("allocating the ", bytes, "-byte arena on ",
                                                      backends_[b]->name()));
    }
    arenas_[b] = std::move(*arena);
  }

  // Inputs: a buffer each, on the backend holding them. States: the model's
  // buffer of that name (zeros when new).
  std::vector<bool> is_state(num_tensors, false);
  for (const StatePair& s : graph_.states) is_state[s.input] = true;
  for (int id : graph_.inputs) {
    const TensorInfo& t = graph_.tensors[id];
    const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
    InputSlot slot;
    slot.tensor = id;
    slot.is_state = is_state[id];
    slot.backend_index = mem.tensors[id].backend;
    slot.backend = backends_[slot.backend_index].get();
    if (slot.is_state) {
      auto state = resources_->BindState(backends_[slot.backend_index], t, graph_.name);
      if (!state.ok()) return state.status();
      slot.buffer = (*state)->buffer.get();
      slot.set = true;
    } else {
      auto buffer = slot.backend->Allocate(static_cast<size_t>(bytes), BufferUsage::kInput,
                                           absl::StrCat("input ", Describe(t)));
      if (!buffer.ok()) {
        return WithContext(buffer.status(), absl::StrCat("allocating ", bytes, " bytes for input ", Describe(t),
                                                         " on ", slot.backend->name()));
      }
      slot.own_buffer = std::move(*buffer);
      slot.buffer = slot.own_buffer.get();
    }
    home_[id] = {slot.buffer, 0};
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
      home_[id] = constant_on_[st.backend][id];
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

  // Which split writes each tensor's bytes: a copy out of a backend waits for it.
  node_split_.assign(graph_.nodes.size(), -1);
  for (size_t si = 0; si < plan_.placement.splits.size(); ++si) {
    for (int ni : plan_.placement.splits[si].nodes) node_split_[ni] = static_cast<int>(si);
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
    op.producer_split = ProducerSplit(s.output);
    state_copies_.push_back(op);
  }

  // What GetOutput may read: graph outputs, and states by their input's name.
  for (int id : graph_.outputs) readable_[graph_.tensors[id].name] = id;
  for (const StatePair& s : graph_.states) readable_[graph_.tensors[s.input].name] = s.input;

  PrepareOptions prepare;
  prepare.timings = options.allow_timings;
  if (auto st = PrepareSplits(prepare); !st.ok()) return st;

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

int Executable::ProducerSplit(int tensor) const {
  const int root = plan_.memory.tensors[tensor].root >= 0 ? plan_.memory.tensors[tensor].root : tensor;
  int producer = graph_.tensors[tensor].producer;
  if (producer < 0) producer = graph_.tensors[graph_.StorageOf(tensor)].producer;
  if (producer < 0 && root >= 0) producer = graph_.tensors[root].producer;
  return producer >= 0 ? node_split_[producer] : -1;
}

// Constants: on every backend that reads them, through the model's
// resources (held once per backend, shared by the model's graphs).
absl::Status Executable::BindConstants(bool wrap) {
  const MemoryPlan& mem = plan_.memory;
  std::vector<std::vector<int>> per_backend(backends_.size());
  for (int id = 0; id < static_cast<int>(graph_.tensors.size()); ++id) {
    const TensorInfo& t = graph_.tensors[id];
    if (!t.is_constant() || t.is_view()) continue;
    std::vector<int> on = mem.constant_backends[id];
    if (on.empty()) on.push_back(mem.tensors[id].backend);  // unread: kept for completeness
    for (int b : on) per_backend[b].push_back(id);
  }
  std::vector<Binding> bound;
  for (size_t b = 0; b < backends_.size(); ++b) {
    if (per_backend[b].empty()) continue;
    if (auto st = resources_->BindWeights(backends_[b], graph_, per_backend[b], wrap, &bound); !st.ok()) {
      return st;
    }
    for (size_t i = 0; i < per_backend[b].size(); ++i) constant_on_[b][per_backend[b][i]] = bound[i];
  }
  return absl::OkStatus();
}

// Prepares each split with bindings of its own backend only: home bindings
// of tensors it holds, its copies of constants, and the arena copies of
// tensors transferred in. Splits are prepared on several threads (backends
// allow it; see backend.h), so that their pipelines compile in parallel.
absl::Status Executable::PrepareSplits(const PrepareOptions& options) {
  const MemoryPlan& mem = plan_.memory;
  const size_t num_splits = plan_.placement.splits.size();
  prepared_.resize(num_splits);
  prepare_events_.resize(num_splits);
  size_t next_transfer = 0;
  for (size_t si = 0; si < num_splits; ++si) {
    PreparedRun& run = prepared_[si];
    run.backend = plan_.placement.splits[si].backend;
    for (; next_transfer < mem.transfers.size() && mem.transfers[next_transfer].split == static_cast<int>(si);
         ++next_transfer) {
      const TransferPlan& tp = mem.transfers[next_transfer];
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
      op.producer_split = ProducerSplit(tp.tensor);
      run.transfers_in.push_back(op);
      if (!op.src->host_data() && !op.dst->host_data()) staging_.resize(std::max(staging_.size(), op.bytes));
    }
  }
  const size_t workers = std::min<size_t>(num_splits, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<absl::Status> errors(num_splits);
  std::atomic<size_t> next{0};
  auto work = [&] {
    Bindings local;
    local.tensors.assign(graph_.tensors.size(), Binding{});
    for (size_t si = next++; si < num_splits; si = next++) errors[si] = PrepareOne(si, options, local);
  };
  if (workers <= 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < workers; ++i) threads.emplace_back(work);
    for (std::thread& t : threads) t.join();
  }
  for (const absl::Status& st : errors) {
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status Executable::PrepareOne(size_t si, const PrepareOptions& options, Bindings& local) {
  const MemoryPlan& mem = plan_.memory;
  const Placement::SplitPlan& sp = plan_.placement.splits[si];
  const int b = sp.backend;
  Backend* backend = backends_[b].get();
  PreparedRun& run = prepared_[si];
  absl::flat_hash_map<int, int> transferred;  // tensor id -> transfer, in this split
  for (const CopyOp& op : run.transfers_in) transferred[op.tensor] = op.transfer;
  std::vector<int> bound;  // ids to clear afterwards
  auto bind = [&](int id) -> absl::Status {
    if (id < 0 || local.tensors[id].buffer) return absl::OkStatus();
    const TensorInfo& t = graph_.tensors[id];
    const int root = graph_.StorageOf(id);
    Binding binding;
    if (auto it = transferred.find(id); it != transferred.end()) {
      binding = {arenas_[b].get(), static_cast<size_t>(mem.transfers[it->second].offset)};
    } else if (mem.tensors[root].kind == StorageKind::kConstant) {
      binding = constant_on_[b].at(root);
      binding.offset += static_cast<size_t>(t.offset);
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
  absl::Status status;
  for (int ni : sp.nodes) {
    for (const std::vector<int>* ids : {&graph_.nodes[ni].inputs, &graph_.nodes[ni].outputs}) {
      for (int id : *ids) {
        if (status.ok()) status = bind(id);
      }
    }
  }
  if (status.ok()) {
    PrepareEvent& event = prepare_events_[si];
    event.split = static_cast<int>(si);
    event.before = backend->pipeline_stats();
    event.start_us = NowUs();
    auto prepared = backend->Prepare(Split{&graph_, sp.nodes}, local, options);
    event.duration_us = NowUs() - event.start_us;
    event.after = backend->pipeline_stats();
    if (prepared.ok()) {
      run.split = std::move(*prepared);
    } else {
      status = WithContext(prepared.status(), absl::StrCat("preparing for ", backend->name()));
    }
  }
  for (int id : bound) local.tensors[id] = Binding{};
  return status;
}

Executable::InputSlot* Executable::FindInput(absl::string_view name) {
  auto it = input_index_.find(name);
  return it == input_index_.end() ? nullptr : &inputs_[it->second];
}

absl::Status Executable::Upload(InputSlot& slot, const void* data, size_t bytes) {
  if (in_flight_) return absl::FailedPreconditionError("setting an input while a run is in flight: Wait() first");
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

absl::StatusOr<std::byte*> Executable::InputHostData(absl::string_view name) {
  InputSlot* slot = FindInput(name);
  if (!slot) return absl::NotFoundError(absl::StrCat("the graph has no input named '", name, "'"));
  if (slot->is_state) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is a state: set it with SetInput"));
  }
  if (in_flight_) return absl::FailedPreconditionError("writing an input while a run is in flight: Wait() first");
  std::byte* p = slot->buffer->host_data();
  if (p) slot->set = true;
  return p;
}

absl::StatusOr<const std::byte*> Executable::OutputHostData(absl::string_view name) const {
  auto it = readable_.find(name);
  if (it == readable_.end()) return absl::NotFoundError(absl::StrCat("the graph has no output named '", name, "'"));
  const int id = it->second;
  const TensorInfo& t = graph_.tensors[id];
  if (in_flight_) return absl::FailedPreconditionError("reading an output while a run is in flight: Wait() first");
  // Only node outputs in the arena: a state or input may have uploads queued.
  if (plan_.memory.tensors[id].kind != StorageKind::kArena) return nullptr;
  if (!has_run_) {
    return absl::FailedPreconditionError(absl::StrCat("output ", Describe(t), " has no value: no run has completed"));
  }
  const Binding& b = home_[id];
  if (!b.buffer || t.strides != ContiguousStrides(t.dtype, t.dims)) return nullptr;
  std::byte* base = b.buffer->host_data();
  return base ? base + b.offset : nullptr;
}

absl::Status Executable::WaitFor(int backend, SyncPoint point) {
  if (point == 0 || reached_[backend] >= point) return absl::OkStatus();
  if (absl::Status st = backends_[backend]->Wait(point); !st.ok()) {
    return WithContext(st, absl::StrCat("running graph '", graph_.name, "' on ", backends_[backend]->name()));
  }
  reached_[backend] = point;
  return absl::OkStatus();
}

absl::Status Executable::DoCopy(const CopyOp& op) {
  Backend& from = *backends_[op.from];
  Backend& to = *backends_[op.to];
  absl::Status st;
  if (op.bytes == 0) {
    // Nothing to copy.
  } else if (op.from == op.to) {
    st = from.Copy(*op.src, op.src_offset, *op.dst, op.dst_offset, op.bytes);
  } else {
    // Reading the source needs only the split that wrote it (or the
    // input's upload) done; writing the destination's host memory directly
    // needs its earlier work done (an Upload is ordered by the backend).
    const SyncPoint ready = op.producer_split >= 0 ? prepared_[op.producer_split].done : inputs_ready_[op.from];
    st = WaitFor(op.from, ready);
    std::byte* dst_host = op.dst->host_data();
    const std::byte* src_host = op.src->host_data();
    if (st.ok() && dst_host) st = WaitFor(op.to, submitted_[op.to]);
    if (!st.ok()) {
    } else if (dst_host) {
      st = from.Download(*op.src, op.src_offset, dst_host + op.dst_offset, op.bytes);
    } else if (src_host) {
      st = to.Upload(*op.dst, op.dst_offset, src_host + op.src_offset, op.bytes);
    } else {
      st = from.Download(*op.src, op.src_offset, staging_.data(), op.bytes);
      if (st.ok()) st = to.Upload(*op.dst, op.dst_offset, staging_.data(), op.bytes);
    }
  }
  if (!st.ok()) {
    return WithContext(st, absl::StrCat(op.transfer >= 0 ? "transferring " : "updating state ",
                                        Describe(graph_.tensors[op.tensor]), " from ", from.name(), " to ",
                                        to.name()));
  }
  return absl::OkStatus();
}

// Flushes every backend and waits for all of it.
absl::Status Executable::WaitAll() {
  absl::Status result;
  for (size_t b = 0; b < backends_.size(); ++b) {
    auto point = backends_[b]->Flush();
    absl::Status st = point.ok() ? absl::OkStatus() : point.status();
    if (point.ok()) {
      submitted_[b] = std::max(submitted_[b], *point);
      st = WaitFor(static_cast<int>(b), *point);
    }
    if (!st.ok() && result.ok()) result = st;
  }
  return result;
}

absl::Status Executable::Run() {
  if (auto st = Submit(); !st.ok()) return st;
  return Wait();
}

absl::Status Executable::Submit() {
  if (in_flight_) return absl::FailedPreconditionError("Submit: the previous run has not been waited for");
  for (const InputSlot& slot : inputs_) {
    if (!slot.set) {
      return absl::FailedPreconditionError(absl::StrCat(
          "input ", Describe(graph_.tensors[slot.tensor]), " has not been set"));
    }
  }
  has_run_ = false;
  in_flight_ = true;
  const bool timed = (profiling_ || tracing_) && allow_timings_;
  // On failure, still wait for what was started, then report the failure.
  auto fail = [this](absl::Status st) {
    WaitAll().IgnoreError();
    in_flight_ = false;
    return st;
  };
  // The inputs set since the last run, submitted.
  for (size_t b = 0; b < backends_.size(); ++b) {
    auto point = backends_[b]->Flush();
    if (!point.ok()) return fail(WithContext(point.status(), absl::StrCat("submitting inputs to ", backends_[b]->name())));
    inputs_ready_[b] = submitted_[b] = std::max(submitted_[b], *point);
  }
  for (size_t si = 0; si < prepared_.size(); ++si) {
    PreparedRun& run = prepared_[si];
    for (const CopyOp& op : run.transfers_in) {
      const double start = tracing_ ? NowUs() : 0;
      if (auto st = DoCopy(op); !st.ok()) return fail(st);
      ++transfer_stats_.count;
      transfer_stats_.bytes += static_cast<int64_t>(op.bytes);
      if (tracing_) run_events_.push_back({RunEvent::kTransfer, op.transfer, start, NowUs() - start});
    }
    run.submit_us = tracing_ ? NowUs() : 0;
    run.timed = timed;
    ExecuteOptions eo;
    eo.timings = timed;
    auto point = backends_[run.backend]->Execute(*run.split, eo);
    if (!point.ok()) return fail(point.status());
    run.done = *point;
    submitted_[run.backend] = std::max(submitted_[run.backend], *point);
  }
  for (size_t i = 0; i < state_copies_.size(); ++i) {
    const double start = tracing_ ? NowUs() : 0;
    if (auto st = DoCopy(state_copies_[i]); !st.ok()) return fail(st);
    if (tracing_) run_events_.push_back({RunEvent::kStateCopy, static_cast<int>(i), start, NowUs() - start});
  }
  return absl::OkStatus();
}

absl::Status Executable::Wait() {
  if (!in_flight_) return absl::FailedPreconditionError("Wait: no run was submitted");
  in_flight_ = false;
  if (auto st = WaitAll(); !st.ok()) return st;
  // Timings, now that the devices are done.
  for (size_t si = 0; si < prepared_.size(); ++si) {
    PreparedRun& run = prepared_[si];
    if (!run.timed) continue;
    timings_.clear();
    if (auto st = backends_[run.backend]->ReadTimings(*run.split, &timings_); !st.ok()) {
      return WithContext(st, absl::StrCat("reading the timings of split ", si));
    }
    double end_us = 0;
    for (const NodeTiming& t : timings_) {
      if (tracing_) run_events_.push_back({RunEvent::kNode, t.node, run.submit_us + t.start_us, t.duration_us});
      end_us = std::max(end_us, t.start_us + t.duration_us);
      if (!profiling_ || t.node < 0 || t.node >= static_cast<int>(node_profile_.size())) continue;
      NodeProfile& p = node_profile_[t.node];
      ++p.count;
      p.total_us += t.duration_us;
      p.last_us = t.duration_us;
    }
    if (tracing_) run_events_.push_back({RunEvent::kSplit, static_cast<int>(si), run.submit_us, end_us});
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
  const TensorStorage& st = plan_.memory.tensors[id];
  if (in_flight_) {
    return absl::FailedPreconditionError(absl::StrCat("reading ", Describe(t), " while a run is in flight: Wait() first"));
  }
  if (!has_run_ && st.kind == StorageKind::kArena) {
    return absl::FailedPreconditionError(
        absl::StrCat("output ", Describe(t), " has no value: no run has completed"));
  }
  const Binding& b = home_[id];
  HostTensor out = HostTensor::Zeros(t.dtype, t.dims);
  const int64_t extent = ExtentBytes(t.dtype, t.dims, t.strides);
  Backend* backend = backends_[st.backend].get();
  // Uploads (SetInput on a state) may still be queued.
  auto point = backend->Flush();
  if (absl::Status s = point.ok() ? backend->Wait(*point) : point.status(); !s.ok()) {
    return WithContext(s, absl::StrCat("reading output ", Describe(t)));
  }
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
              {"compile_ms", absl::StrCat(e.after.compile_ms - e.before.compile_ms)},
              {"disk_ms", absl::StrCat(e.after.disk_ms - e.before.disk_ms)}};
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
