// The OpenCL backend: device buffers, in-order queues (one with profiling
// for runs that ask for node timings, one without for the rest, commands in
// one order across both; the backend flag profiling=off or
// KILN_OPENCL_PROFILING=off keeps only the second, and then runs asking for
// node timings are an error) with marker events as sync points, programs through ProgramCache, and prepared
// splits that own their kernels (a cl_kernel holds its arguments) so that
// Execute only enqueues.
#include "opencl_backend.h"

#include <CL/cl.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/device_error.h"
#include "cl_util.h"
#include "device.h"
#include "dispatch.h"
#include "ops/op_schema.h"
#include "programs.h"

namespace kiln {
namespace {

using opencl::ClError;
using opencl::ClErrorName;
using opencl::DeviceFacts;
using opencl::Dispatch;
using opencl::TensorArg;

constexpr int64_t kMaxElements = (int64_t{1} << 31) - 1;  // kernels index with 32-bit strides

class ClBuffer : public Buffer {
 public:
  ClBuffer(cl_mem mem, size_t size) : mem_(mem), size_(size) {}
  ~ClBuffer() override {
    if (mem_) clReleaseMemObject(mem_);
  }
  size_t size() const override { return size_; }
  cl_mem mem() const { return mem_; }

 private:
  cl_mem mem_;
  size_t size_;
};

const ClBuffer* AsCl(const Buffer& b) { return dynamic_cast<const ClBuffer*>(&b); }

// A split's device-error record, shared with the queue's pending list so a
// Wait after the split is gone still reads it safely.
struct ErrorRecord {
  cl_mem mem = nullptr;
  const Graph* graph = nullptr;
  ~ErrorRecord() {
    if (mem) clReleaseMemObject(mem);
  }
};

class ClPreparedSplit : public PreparedSplit {
 public:
  ~ClPreparedSplit() override {
    ReleaseEvents();
    for (Dispatch& d : dispatches) {
      if (d.kernel) clReleaseKernel(d.kernel);
    }
    for (cl_mem m : scratch) clReleaseMemObject(m);
  }
  void ReleaseEvents() {
    for (cl_event e : events) {
      if (e) clReleaseEvent(e);
    }
    events.clear();
  }
  std::vector<Dispatch> dispatches;
  std::vector<cl_mem> scratch;
  std::shared_ptr<ErrorRecord> errors;  // null when no node can raise one
  std::vector<cl_event> events;         // of the last timed Execute, one per dispatch
};

class ClPrepareContext : public opencl::PrepareContext {
 public:
  ClPrepareContext(opencl::ProgramCache& programs, cl_context context, ClPreparedSplit& split)
      : programs_(programs), context_(context), split_(split) {}
  absl::StatusOr<Dispatch*> Add(absl::string_view source, const std::string& options, const char* name) override {
    auto program = programs_.Get(source, options);
    if (!program.ok()) return program.status();
    cl_int err = CL_SUCCESS;
    cl_kernel k = clCreateKernel(*program, name, &err);
    if (err != CL_SUCCESS) return ClError(err, absl::StrCat("creating kernel ", name, " of ", source, ".cl"));
    Dispatch d;
    d.kernel = k;
    d.node = node_index;
    d.name = name;
    split_.dispatches.push_back(d);
    return &split_.dispatches.back();
  }
  absl::StatusOr<cl_mem> Scratch(size_t bytes, bool zeroed) override {
    cl_int err = CL_SUCCESS;
    bytes = std::max<size_t>(bytes, 4);
    std::vector<char> zeros(zeroed ? bytes : 0);
    cl_mem m = clCreateBuffer(context_, CL_MEM_READ_WRITE | (zeroed ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              zeroed ? zeros.data() : nullptr, &err);
    if (err != CL_SUCCESS) {
      return ClError(err, absl::StrCat("allocating ", bytes, " bytes of scratch for ", NodeLabel(*node)));
    }
    split_.scratch.push_back(m);
    return m;
  }

 private:
  opencl::ProgramCache& programs_;
  cl_context context_;
  ClPreparedSplit& split_;
};

class OpenClBackend : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<OpenClBackend>> Create(DeviceFacts facts, std::string cache_dir) {
    auto b = std::unique_ptr<OpenClBackend>(new OpenClBackend(std::move(facts)));
    if (auto st = b->Init(std::move(cache_dir)); !st.ok()) return st;
    return b;
  }

  ~OpenClBackend() override {
    if (queue_) clFinish(queue_);
    for (auto& [p, e] : points_) clReleaseEvent(e);
    programs_.reset();
    if (dummy_) clReleaseMemObject(dummy_);
    for (cl_command_queue q : {timed_queue_, plain_queue_}) {
      if (q) clReleaseCommandQueue(q);
    }
    if (context_) clReleaseContext(context_);
  }

  absl::string_view name() const override { return "opencl"; }
  const DeviceInfo& device() const override { return info_; }
  BackendLimits limits() const override {
    BackendLimits l;
    l.buffer_alignment = static_cast<size_t>(std::max(64, facts_.mem_base_align_bytes));
    l.max_allocation = facts_.max_alloc;
    l.max_binding = facts_.max_alloc;
    l.host_import_alignment = 0;
    return l;
  }

  Support supports(const Graph& graph, const Node& node) const override {
    const opencl::OpEntry* entry = opencl::FindOp(node.op);
    if (!entry) return Support::No(absl::StrCat("no OpenCL kernel for op ", node.op));
    for (const std::vector<int>* ids : {&node.inputs, &node.outputs}) {
      for (int id : *ids) {
        if (id < 0 || id >= static_cast<int>(graph.tensors.size())) continue;
        const TensorInfo& t = graph.tensors[id];
        const int es = ElementSize(t.dtype);
        const int unit = es > 0 ? es : 2;  // q8_0 blocks hold an f16 scale: even byte offsets
        bool aligned = t.offset % unit == 0;
        for (size_t i = 0; i + 1 < t.strides.size(); ++i) aligned &= t.strides[i] % unit == 0;
        if (!aligned) {
          return Support::No(absl::StrCat("tensor ", Describe(t), " has an offset or stride that is not a multiple of ",
                                          unit, " bytes"));
        }
        const int64_t extent = ExtentBytes(t.dtype, t.dims, t.strides);
        if (extent / std::max(es, 1) > kMaxElements) {
          return Support::No(absl::StrCat("tensor ", Describe(t), " spans ", extent,
                                          " bytes: kernels index with 32-bit element strides"));
        }
        if (static_cast<uint64_t>(extent) > facts_.max_alloc) {
          return Support::No(absl::StrCat("tensor ", Describe(t), " spans ", extent,
                                          " bytes, more than the device's largest buffer (", facts_.max_alloc, ")"));
        }
      }
    }
    return entry->supports ? entry->supports(graph, node, facts_) : Support::Yes();
  }

  absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t bytes, BufferUsage usage, absl::string_view label) override {
    if (auto st = CheckLost(); !st.ok()) return st;
    if (bytes > facts_.max_alloc) {
      return absl::ResourceExhaustedError(absl::StrCat("opencl: ", bytes, " bytes for ", label,
                                                       " exceed the device's largest allocation (", facts_.max_alloc,
                                                       " bytes, ", facts_.name, ")"));
    }
    cl_mem_flags flags = CL_MEM_READ_WRITE;
    // Host-visible memory for what the host writes every run; device memory
    // for the rest.
    if (usage == BufferUsage::kInput || usage == BufferUsage::kStaging) flags |= CL_MEM_ALLOC_HOST_PTR;
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(context_, flags, std::max<size_t>(bytes, 4), nullptr, &err);
    if (err != CL_SUCCESS) {
      if (opencl::IsAllocationFailure(err) || err == CL_INVALID_BUFFER_SIZE) {
        return absl::ResourceExhaustedError(absl::StrCat("opencl: out of device memory allocating ", bytes,
                                                         " bytes for ", label, " (", BufferUsageName(usage), ", ",
                                                         ClErrorName(err), ")"));
      }
      return ClError(err, absl::StrCat("allocating ", bytes, " bytes for ", label));
    }
    return std::unique_ptr<Buffer>(new ClBuffer(m, bytes));
  }

  absl::Status Upload(Buffer& dst, size_t offset, const void* src, size_t n) override {
    const ClBuffer* b = AsCl(dst);
    if (!b) return absl::InvalidArgumentError("Upload: not an OpenCL buffer");
    if (auto st = CheckRange("Upload", b->size(), offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    if (auto st = CheckLost(); !st.ok()) return st;
    // Blocking: the caller may reuse `src` when this returns.
    return Check(clEnqueueWriteBuffer(queue_, b->mem(), CL_TRUE, offset, n, src, 0, nullptr, nullptr),
                 absl::StrCat("uploading ", n, " bytes"));
  }

  absl::Status Download(const Buffer& src, size_t offset, void* dst, size_t n) override {
    const ClBuffer* b = AsCl(src);
    if (!b) return absl::InvalidArgumentError("Download: not an OpenCL buffer");
    if (auto st = CheckRange("Download", b->size(), offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    if (auto st = CheckLost(); !st.ok()) return st;
    return Check(clEnqueueReadBuffer(queue_, b->mem(), CL_TRUE, offset, n, dst, 0, nullptr, nullptr),
                 absl::StrCat("downloading ", n, " bytes"));
  }

  absl::Status Copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset, size_t n) override {
    const ClBuffer* s = AsCl(src);
    const ClBuffer* d = AsCl(dst);
    if (!s || !d) return absl::InvalidArgumentError("Copy: not an OpenCL buffer");
    if (auto st = CheckRange("Copy source", s->size(), src_offset, n); !st.ok()) return st;
    if (auto st = CheckRange("Copy destination", d->size(), dst_offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    if (auto st = CheckLost(); !st.ok()) return st;
    return Check(clEnqueueCopyBuffer(queue_, s->mem(), d->mem(), src_offset, dst_offset, n, 0, nullptr, nullptr),
                 absl::StrCat("copying ", n, " bytes"));
  }

  absl::Status Fill(Buffer& dst, size_t offset, size_t n, uint8_t value) override {
    const ClBuffer* b = AsCl(dst);
    if (!b) return absl::InvalidArgumentError("Fill: not an OpenCL buffer");
    if (auto st = CheckRange("Fill", b->size(), offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    if (auto st = CheckLost(); !st.ok()) return st;
    return Check(clEnqueueFillBuffer(queue_, b->mem(), &value, 1, offset, n, 0, nullptr, nullptr),
                 absl::StrCat("filling ", n, " bytes"));
  }

  absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split, const Bindings& bindings,
                                                         const PrepareOptions& options) override {
    if (auto st = CheckLost(); !st.ok()) return st;
    if (!split.graph) return absl::InvalidArgumentError("Prepare: the split has no graph");
    const Graph& graph = *split.graph;
    auto prepared = std::make_unique<ClPreparedSplit>();
    ClPrepareContext ctx(*programs_, context_, *prepared);
    ctx.graph = &graph;
    ctx.device = &facts_;
    ctx.dummy = dummy_;
    for (int ni : split.nodes) {
      if (ni < 0 || ni >= static_cast<int>(graph.nodes.size())) {
        return absl::InvalidArgumentError(absl::StrCat("Prepare: node #", ni, " does not exist"));
      }
      const Node& node = graph.nodes[ni];
      Support s = supports(graph, node);
      if (!s.ok) return absl::UnimplementedError(absl::StrCat(NodeLabel(node), ": ", s.reason));
      if (node.op == "gather" || node.op == "write_rows") {
        if (!prepared->errors) {
          auto rec = std::make_shared<ErrorRecord>();
          rec->graph = &graph;
          cl_int err = CL_SUCCESS;
          rec->mem = clCreateBuffer(context_, CL_MEM_READ_WRITE, sizeof(DeviceErrorRecord), nullptr, &err);
          if (err != CL_SUCCESS) return ClError(err, "allocating the device-error record");
          const DeviceErrorRecord zero{};
          std::lock_guard<std::mutex> lock(mu_);
          if (auto st = Check(clEnqueueWriteBuffer(queue_, rec->mem, CL_TRUE, 0, sizeof(zero), &zero, 0, nullptr, nullptr),
                              "clearing the device-error record");
              !st.ok()) {
            return st;
          }
          prepared->errors = std::move(rec);
        }
      }
      ctx.node = &node;
      ctx.node_index = ni;
      ctx.error_record = prepared->errors ? prepared->errors->mem : dummy_;
      ctx.dispatches = &prepared->dispatches;
      ctx.in.clear();
      ctx.out.clear();
      for (int id : node.inputs) {
        auto t = Resolve(graph, node, bindings, id);
        if (!t.ok()) return t.status();
        ctx.in.push_back(*t);
      }
      for (int id : node.outputs) {
        auto t = Resolve(graph, node, bindings, id);
        if (!t.ok()) return t.status();
        ctx.out.push_back(*t);
      }
      const opencl::OpEntry* entry = opencl::FindOp(node.op);
      if (auto st = entry->prepare(ctx); !st.ok()) {
        if (absl::StrContains(st.message(), NodeLabel(node))) return st;
        return absl::Status(st.code(), absl::StrCat(NodeLabel(node), ": ", st.message()));
      }
    }
    return std::unique_ptr<PreparedSplit>(std::move(prepared));
  }

  absl::StatusOr<SyncPoint> Execute(PreparedSplit& split, const ExecuteOptions& options) override {
    auto* prepared = dynamic_cast<ClPreparedSplit*>(&split);
    if (!prepared) return absl::InvalidArgumentError("Execute: the split was not prepared by the OpenCL backend");
    std::lock_guard<std::mutex> lock(mu_);
    if (auto st = CheckLost(); !st.ok()) return st;
    if (options.timings && !facts_.profiling) {
      return absl::FailedPreconditionError(
          "opencl: node timings were asked for, but this backend's queue has no profiling (created with "
          "profiling=off or KILN_OPENCL_PROFILING=off)");
    }
    const bool timed = options.timings;
    if (plain_queue_) UseQueueLocked(timed ? timed_queue_ : plain_queue_);
    prepared->ReleaseEvents();
    if (timed) prepared->events.assign(prepared->dispatches.size(), nullptr);
    for (size_t i = 0; i < prepared->dispatches.size(); ++i) {
      const Dispatch& d = prepared->dispatches[i];
      const size_t* local = d.local[0] ? d.local.data() : nullptr;
      const cl_int err = clEnqueueNDRangeKernel(queue_, d.kernel, d.work_dim, nullptr, d.global.data(), local, 0,
                                                nullptr, timed ? &prepared->events[i] : nullptr);
      if (err != CL_SUCCESS) return Check(err, absl::StrCat("enqueueing kernel ", d.name, " of node #", d.node));
    }
    if (prepared->errors) pending_errors_.push_back(prepared->errors);
    return MarkLocked();
  }

  absl::Status ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) override {
    auto* prepared = dynamic_cast<ClPreparedSplit*>(&split);
    if (!prepared) return absl::InvalidArgumentError("ReadTimings: the split was not prepared by the OpenCL backend");
    if (prepared->events.empty()) return absl::OkStatus();
    cl_ulong t0 = 0;
    std::vector<NodeTiming> timings;
    for (size_t i = 0; i < prepared->events.size(); ++i) {
      cl_ulong start = 0, end = 0;
      cl_event e = prepared->events[i];
      if (clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof(start), &start, nullptr) != CL_SUCCESS ||
          clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof(end), &end, nullptr) != CL_SUCCESS) {
        return absl::FailedPreconditionError("ReadTimings: the split's timed run has not been waited for");
      }
      if (i == 0) t0 = start;
      const int node = prepared->dispatches[i].node;
      const double s_us = (start - t0) / 1000.0, e_us = (end - t0) / 1000.0;
      // A node of several dispatches: from its first start to its last end.
      if (!timings.empty() && timings.back().node == node) {
        timings.back().duration_us = e_us - timings.back().start_us;
      } else {
        timings.push_back({node, s_us, e_us - s_us});
      }
    }
    out->insert(out->end(), timings.begin(), timings.end());
    return absl::OkStatus();
  }

  absl::StatusOr<SyncPoint> Flush() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto st = CheckLost(); !st.ok()) return st;
    clFlush(queue_);
    return MarkLocked();
  }

  absl::Status Wait(SyncPoint point) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto st = CheckLost(); !st.ok()) return st;
    if (point > submitted_) {
      return absl::InvalidArgumentError(absl::StrCat("Wait: point ", point, " was never returned (last ", submitted_, ")"));
    }
    // The first marker at or after `point` covers it (one in-order queue).
    cl_event wait_for = nullptr;
    SyncPoint reached = 0;
    for (auto& [p, e] : points_) {
      if (p >= point) {
        wait_for = e;
        reached = p;
        break;
      }
    }
    if (!wait_for) return absl::OkStatus();  // already waited for
    clRetainEvent(wait_for);
    lock.unlock();
    cl_int err = clWaitForEvents(1, &wait_for);
    cl_int exec = CL_COMPLETE;
    clGetEventInfo(wait_for, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(exec), &exec, nullptr);
    clReleaseEvent(wait_for);
    lock.lock();
    if (err != CL_SUCCESS || exec < 0) {
      // A failed command (a kernel fault, CL_OUT_OF_RESOURCES on NVIDIA) leaves
      // the queue unusable: the device is treated as lost from here on.
      lost_ = absl::StrCat("waiting for submission ", point, ": ", ClErrorName(err != CL_SUCCESS ? err : exec));
      return CheckLost();
    }
    while (!points_.empty() && points_.front().first <= reached) {
      clReleaseEvent(points_.front().second);
      points_.pop_front();
    }
    // Errors kernels recorded in the splits run so far (all of them are done).
    absl::Status first;
    std::vector<std::shared_ptr<ErrorRecord>> records;
    records.swap(pending_errors_);
    for (const auto& rec : records) {
      DeviceErrorRecord r{};
      if (auto st = Check(clEnqueueReadBuffer(queue_, rec->mem, CL_TRUE, 0, sizeof(r), &r, 0, nullptr, nullptr),
                          "reading the device-error record");
          !st.ok()) {
        return st;
      }
      if (r.code != kDeviceErrorNone) {
        if (first.ok()) first = DeviceErrorStatus(*rec->graph, r);
        const DeviceErrorRecord zero{};
        clEnqueueWriteBuffer(queue_, rec->mem, CL_TRUE, 0, sizeof(zero), &zero, 0, nullptr, nullptr);
      }
    }
    return first;
  }

  PipelineStats pipeline_stats() const override { return programs_->stats(); }

 private:
  explicit OpenClBackend(DeviceFacts facts) : facts_(std::move(facts)), info_(facts_.Info()) {}

  absl::Status Init(std::string cache_dir) {
    cl_int err = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, reinterpret_cast<cl_context_properties>(facts_.platform), 0};
    context_ = clCreateContext(props, 1, &facts_.device, nullptr, nullptr, &err);
    if (err != CL_SUCCESS) return ClError(err, absl::StrCat("creating a context on ", facts_.name));
    auto create_queue = [&](bool profiling) -> cl_command_queue {
      const cl_command_queue_properties qp = profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
#ifdef CL_VERSION_2_0
      if (!absl::StartsWith(facts_.version, "OpenCL 1.")) {
        const cl_queue_properties qprops[] = {CL_QUEUE_PROPERTIES, qp, 0};
        return clCreateCommandQueueWithProperties(context_, facts_.device, qprops, &err);
      }
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      return clCreateCommandQueue(context_, facts_.device, qp, &err);
#pragma GCC diagnostic pop
    };
    timed_queue_ = queue_ = create_queue(facts_.profiling);
    if (err != CL_SUCCESS) return ClError(err, absl::StrCat("creating a queue on ", facts_.name));
    // Runs without timings go to a second queue without profiling (the two
    // ordered by markers where a run changes queue): on the H200 a queue
    // without CL_QUEUE_PROFILING_ENABLE ran back-to-back kernels ~0.6 us
    // faster each (bench/RESULTS.md). KILN_OPENCL_QUEUES=1: one queue.
    if (facts_.profiling && opencl::EnvInt("KILN_OPENCL_QUEUES", 2) != 1) {
      plain_queue_ = create_queue(false);
      if (err != CL_SUCCESS) return ClError(err, absl::StrCat("creating a second queue on ", facts_.name));
    }
    dummy_ = clCreateBuffer(context_, CL_MEM_READ_WRITE, 64, nullptr, &err);
    if (err != CL_SUCCESS) return ClError(err, "allocating a 64-byte placeholder buffer");
    // "" = the environment's cache folder, "off" = none, else that folder.
    DiskCacheOptions disk = DiskCacheOptions::FromEnvironment();
    if (cache_dir == "off") {
      disk.dir.clear();
    } else if (!cache_dir.empty()) {
      disk.dir = cache_dir + "/pipelines";
    }
    programs_ = std::make_unique<opencl::ProgramCache>(context_, facts_, std::move(disk));
    return absl::OkStatus();
  }

  absl::Status CheckLost() const {
    if (lost_.empty()) return absl::OkStatus();
    return DeviceLostError("opencl", lost_);
  }

  // Errors of enqueue calls: a queue that reports CL_OUT_OF_RESOURCES or
  // CL_DEVICE_NOT_AVAILABLE is gone (NVIDIA reports faults that way).
  absl::Status Check(cl_int err, const std::string& what) {
    if (err == CL_SUCCESS) return absl::OkStatus();
    if (err == CL_OUT_OF_RESOURCES || err == CL_DEVICE_NOT_AVAILABLE || err == CL_INVALID_COMMAND_QUEUE) {
      lost_ = absl::StrCat(what, ": ", ClErrorName(err));
      return CheckLost();
    }
    return ClError(err, what);
  }

  // Commands go to `to` from now on, after everything enqueued so far on
  // the current queue (a marker there, a barrier on `to` waiting for it).
  void UseQueueLocked(cl_command_queue to) {
    if (to == queue_) return;
    cl_event e = nullptr;
    if (clEnqueueMarkerWithWaitList(queue_, 0, nullptr, &e) == CL_SUCCESS) {
      clFlush(queue_);
      if (clEnqueueBarrierWithWaitList(to, 1, &e, nullptr) != CL_SUCCESS) clWaitForEvents(1, &e);
      clReleaseEvent(e);
    } else {
      clFinish(queue_);
    }
    queue_ = to;
  }

  SyncPoint MarkLocked() {
    cl_event e = nullptr;
    if (clEnqueueMarkerWithWaitList(queue_, 0, nullptr, &e) == CL_SUCCESS) {
      points_.emplace_back(++submitted_, e);
    } else {
      clFinish(queue_);  // no marker: make the point reached now
      ++submitted_;
    }
    return submitted_;
  }

  absl::StatusOr<TensorArg> Resolve(const Graph& graph, const Node& node, const Bindings& bindings, int id) const {
    auto b = ResolveBinding(graph, node, bindings, id);
    if (!b.ok()) return b.status();
    if (!b->buffer) return TensorArg{};
    const TensorInfo& info = graph.tensors[id];
    const ClBuffer* cb = AsCl(*b->buffer);
    if (!cb) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": tensor ", Describe(info),
                                                     " is bound to a buffer that is not OpenCL memory"));
    }
    // q8_0 blocks are read as 16-bit scales: at even bytes.
    if (info.dtype == DType::kQ8_0 && b->offset % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": tensor ", Describe(info),
                                                     " is bound at an odd offset ", b->offset));
    }
    TensorArg t;
    t.mem = cb->mem();
    t.byte_offset = b->offset;
    t.info = &info;
    return t;
  }

  const DeviceFacts facts_;
  const DeviceInfo info_;
  cl_context context_ = nullptr;
  cl_command_queue queue_ = nullptr;  // the queue commands go to: timed_queue_ or plain_queue_
  cl_command_queue timed_queue_ = nullptr;  // profiling as facts_.profiling says
  cl_command_queue plain_queue_ = nullptr;  // no profiling, for untimed runs (none with KILN_OPENCL_QUEUES=1)
  cl_mem dummy_ = nullptr;
  std::unique_ptr<opencl::ProgramCache> programs_;
  std::mutex mu_;  // the queue and everything below
  SyncPoint submitted_ = 0;
  std::deque<std::pair<SyncPoint, cl_event>> points_;
  std::vector<std::shared_ptr<ErrorRecord>> pending_errors_;
  std::string lost_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateOpenClBackend(const BackendOptions& options) {
  if (auto st = CheckBackendFlags("opencl", options.flags, {"profiling"}); !st.ok()) return st;
  auto devices = opencl::EnumerateDevices();
  if (!devices.ok()) return devices.status();
  auto index = opencl::PickDevice(*devices, options.device);
  if (!index.ok()) return index.status();
  // profiling=off: a queue without CL_QUEUE_PROFILING_ENABLE, for a process
  // that never reads node timings. The queue's properties are fixed at its
  // creation and a backend serves any number of executables (each with its
  // own allow_timings), so the choice is the backend's, made when it is
  // created; one queue keeps every command ordered.
  // The flag wins over $KILN_OPENCL_PROFILING (for tools that pass no flags).
  opencl::DeviceFacts facts = (*devices)[*index];
  std::string profiling = "on";
  if (const char* env = std::getenv("KILN_OPENCL_PROFILING"); env && *env) profiling = env;
  if (auto it = options.flags.find("profiling"); it != options.flags.end()) profiling = it->second;
  if (profiling != "on" && profiling != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("opencl: profiling='", profiling, "' (flag or KILN_OPENCL_PROFILING) is neither 'on' nor 'off'"));
  }
  if (profiling == "off") facts.profiling = false;
  auto b = OpenClBackend::Create(std::move(facts), options.cache_dir);
  if (!b.ok()) return b.status();
  return std::unique_ptr<Backend>(std::move(*b));
}

BackendFactory OpenClBackendFactory() {
  BackendFactory f;
  f.name = "opencl";
  f.list_devices = []() -> absl::StatusOr<std::vector<DeviceInfo>> {
    auto devices = opencl::EnumerateDevices();
    if (!devices.ok()) return devices.status();
    std::vector<DeviceInfo> out;
    for (const DeviceFacts& d : *devices) out.push_back(d.Info());
    return out;
  };
  f.create = CreateOpenClBackend;
  return f;
}

}  // namespace kiln
