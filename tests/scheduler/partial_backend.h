// A test-only backend that runs a chosen subset of ops with the CPU kernels,
// so multi-backend scheduling (placement, splits, transfers) is tested
// without a GPU.
//
// It behaves like a device with memory of its own: its buffers are a type
// of their own with no host address, so other backends and the executor can
// reach them only through its Upload/Download/Copy (which it counts), and
// it refuses to prepare a split bound to any buffer but its own. A transfer
// the executor forgot, or a foreign buffer it passed, is an error or a
// wrong result, never silently right.
//
// It is also asynchronous like a GPU queue: Upload, Copy, Fill and Execute
// are queued and run only when a Wait reaches them, so an executor that
// reads (Download) without waiting for the writer gets stale bytes; kernel
// errors come back from that Wait; new buffers hold garbage (0xA5) rather
// than zeros; bindings are checked against its alignment; and the device
// can be "lost" on purpose.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"

namespace kiln::test {

class PartialBackend : public Backend {
 public:
  struct Counts {
    int64_t uploads = 0, downloads = 0, copies = 0, fills = 0;
    int64_t upload_bytes = 0, download_bytes = 0, copy_bytes = 0;
    int64_t waits = 0;  // Wait calls that had work to finish
    int64_t transfers() const { return uploads + downloads; }
  };
  struct Options {
    size_t alignment = 64;        // limits().buffer_alignment, checked in Prepare
    uint64_t max_allocation = ~uint64_t{0};
    bool deferred = true;         // run work at Wait, like a device queue
  };

  // Runs the ops in `ops` (where the CPU backend runs them), nothing else.
  static std::shared_ptr<PartialBackend> Create(std::set<std::string> ops, std::string name = "partial") {
    return Create(std::move(ops), std::move(name), Options{});
  }
  static std::shared_ptr<PartialBackend> Create(std::set<std::string> ops, std::string name, Options options) {
    BackendOptions bo;
    bo.threads = 1;
    auto cpu = CreateCpuBackend(bo);
    if (!cpu.ok()) return nullptr;
    return std::shared_ptr<PartialBackend>(
        new PartialBackend(*std::move(cpu), std::move(ops), std::move(name), options));
  }

  absl::string_view name() const override { return name_; }
  const DeviceInfo& device() const override { return device_; }
  BackendLimits limits() const override {
    BackendLimits l;
    l.buffer_alignment = options_.alignment;
    l.max_allocation = options_.max_allocation;
    l.host_import_alignment = 0;  // device memory only
    return l;
  }

  Support supports(const Graph& graph, const Node& node) const override {
    if (!ops_.count(node.op)) return Support::No(absl::StrCat("op ", node.op, " is not in the test subset"));
    return inner_->supports(graph, node);
  }

  absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t bytes, BufferUsage usage, absl::string_view label) override {
    if (lost_) return Lost();
    if (bytes > options_.max_allocation) {
      return absl::ResourceExhaustedError(absl::StrCat(name_, ": out of device memory allocating ", bytes,
                                                       " bytes for ", label));
    }
    auto inner = inner_->Allocate(bytes, usage, label);
    if (!inner.ok()) return inner.status();
    // Contents start undefined: garbage, so that a missing Fill shows.
    if (bytes) std::memset((*inner)->host_data(), 0xA5, bytes);
    ++allocations_;
    return std::unique_ptr<Buffer>(new PartialBuffer(*std::move(inner)));
  }

  absl::Status Upload(Buffer& dst, size_t offset, const void* src, size_t n) override {
    if (lost_) return Lost();
    PartialBuffer* d = Own(dst);
    if (!d) return Foreign("Upload");
    if (offset > d->size() || n > d->size() - offset) return absl::OutOfRangeError("Upload: out of range");
    ++counts_.uploads;
    counts_.upload_bytes += static_cast<int64_t>(n);
    Buffer* inner = d->inner.get();
    if (!options_.deferred) return Enqueue([&] { return inner_->Upload(*inner, offset, src, n); });
    // Done with `src` now: the bytes are copied into the queued command.
    auto bytes = std::make_shared<std::vector<std::byte>>(static_cast<const std::byte*>(src),
                                                          static_cast<const std::byte*>(src) + n);
    return Enqueue([this, inner, offset, bytes] { return inner_->Upload(*inner, offset, bytes->data(), bytes->size()); });
  }
  absl::Status Download(const Buffer& src, size_t offset, void* dst, size_t n) override {
    if (lost_) return Lost();
    const PartialBuffer* s = Own(src);
    if (!s) return Foreign("Download");
    ++counts_.downloads;
    counts_.download_bytes += static_cast<int64_t>(n);
    // Reads the bytes as they are now: the caller waited for their writers.
    return inner_->Download(*s->inner, offset, dst, n);
  }
  absl::Status Copy(const Buffer& src, size_t so, Buffer& dst, size_t doff, size_t n) override {
    if (lost_) return Lost();
    const PartialBuffer* s = Own(src);
    PartialBuffer* d = Own(dst);
    if (!s || !d) return Foreign("Copy");
    ++counts_.copies;
    counts_.copy_bytes += static_cast<int64_t>(n);
    const Buffer* si = s->inner.get();
    Buffer* di = d->inner.get();
    return Enqueue([this, si, so, di, doff, n] { return inner_->Copy(*si, so, *di, doff, n); });
  }
  absl::Status Fill(Buffer& dst, size_t offset, size_t n, uint8_t value) override {
    if (lost_) return Lost();
    PartialBuffer* d = Own(dst);
    if (!d) return Foreign("Fill");
    ++counts_.fills;
    Buffer* di = d->inner.get();
    return Enqueue([this, di, offset, n, value] { return inner_->Fill(*di, offset, n, value); });
  }

  absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split, const Bindings& bindings,
                                                         const PrepareOptions& options) override {
    if (lost_) return Lost();
    auto prepared = std::make_unique<Prepared>();
    prepared->bindings.tensors.resize(bindings.tensors.size());
    std::vector<std::string> foreign, misaligned;
    for (size_t id = 0; id < bindings.tensors.size(); ++id) {
      const Binding& b = bindings.tensors[id];
      if (!b.buffer) continue;
      const PartialBuffer* own = Own(*b.buffer);
      const std::string name = split.graph ? split.graph->tensors[id].name : absl::StrCat("#", id);
      if (!own) {
        foreign.push_back(name);
        continue;
      }
      // Storage tensors start at the backend's alignment; views need not.
      if (split.graph && !split.graph->tensors[id].is_view() && b.offset % options_.alignment != 0) {
        misaligned.push_back(absl::StrCat(name, "@", b.offset));
      }
      prepared->bindings.tensors[id] = {own->inner.get(), b.offset};
    }
    if (!foreign.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": tensors bound to another backend's buffers: ",
                                                     absl::StrJoin(foreign, ", ")));
    }
    if (!misaligned.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": tensors bound at offsets that are not multiples of ",
                                                     options_.alignment, ": ", absl::StrJoin(misaligned, ", ")));
    }
    auto inner = inner_->Prepare(split, prepared->bindings, options);
    if (!inner.ok()) return inner.status();
    prepared->inner = *std::move(inner);
    prepared->may_time = options.timings;
    return std::unique_ptr<PreparedSplit>(std::move(prepared));
  }
  absl::StatusOr<SyncPoint> Execute(PreparedSplit& split, const ExecuteOptions& options) override {
    if (lost_) return Lost();
    auto* p = dynamic_cast<Prepared*>(&split);
    if (!p) return absl::InvalidArgumentError(absl::StrCat(name_, ": Execute of a split it did not prepare"));
    if (options.timings && !p->may_time) {
      return absl::FailedPreconditionError(absl::StrCat(name_, ": timings asked of a split prepared without them"));
    }
    ++executes_;
    const bool timed = options.timings;
    if (auto st = Enqueue([this, p, timed] {
          ExecuteOptions eo;
          eo.timings = timed;
          auto point = inner_->Execute(*p->inner, eo);
          p->timings.clear();
          if (point.ok() && timed) inner_->ReadTimings(*p->inner, &p->timings).IgnoreError();
          return point.status();
        });
        !st.ok()) {
      return st;
    }
    p->done = submitted_;
    return submitted_;
  }
  absl::Status ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) override {
    auto* p = dynamic_cast<Prepared*>(&split);
    if (!p) return absl::InvalidArgumentError(absl::StrCat(name_, ": ReadTimings of a split it did not prepare"));
    if (p->done > reached_) {
      return absl::FailedPreconditionError(absl::StrCat(name_, ": timings read before the split was waited for"));
    }
    out->insert(out->end(), p->timings.begin(), p->timings.end());
    return absl::OkStatus();
  }
  absl::StatusOr<SyncPoint> Flush() override {
    if (lost_) return Lost();
    return submitted_;
  }
  absl::Status Wait(SyncPoint point) override {
    if (lost_) return Lost();
    if (point > submitted_) return absl::InvalidArgumentError(absl::StrCat(name_, ": Wait for a point not submitted"));
    absl::Status first;
    if (reached_ < point) ++counts_.waits;
    while (reached_ < point) {
      Queued q = std::move(queue_.front());
      queue_.pop_front();
      absl::Status st = q.work();
      if (!st.ok() && first.ok()) first = st;
      reached_ = q.point;
    }
    return first;
  }
  PipelineStats pipeline_stats() const override { return inner_->pipeline_stats(); }

  const Counts& counts() const { return counts_; }
  int64_t executes() const { return executes_; }
  int64_t allocations() const { return allocations_; }
  void ResetCounts() {
    counts_ = {};
    executes_ = 0;
  }
  // From now on every call fails with DeviceLostError.
  void LoseDevice() { lost_ = true; }
  // Work submitted but not yet run (the device is "busy").
  size_t queued() const { return queue_.size(); }

 private:
  // Device-like memory: the CPU buffer inside, but no host address outside.
  struct PartialBuffer : Buffer {
    explicit PartialBuffer(std::unique_ptr<Buffer> b) : inner(std::move(b)) {}
    size_t size() const override { return inner->size(); }
    std::unique_ptr<Buffer> inner;
  };
  struct Prepared : PreparedSplit {
    Bindings bindings;
    std::unique_ptr<PreparedSplit> inner;
    std::vector<NodeTiming> timings;
    SyncPoint done = 0;
    bool may_time = false;
  };
  struct Queued {
    SyncPoint point;
    std::function<absl::Status()> work;
  };

  PartialBackend(std::unique_ptr<Backend> inner, std::set<std::string> ops, std::string name, Options options)
      : inner_(std::move(inner)), ops_(std::move(ops)), name_(std::move(name)), options_(options) {
    device_ = inner_->device();
    device_.backend = name_;
    device_.kind = "test";
    device_.name = absl::StrCat("CPU kernels for ", absl::StrJoin(ops_, ","));
  }

  // Deferred: queued until a Wait reaches it. Otherwise run now, with no
  // allocation (the executor's allocation-free runs are tested through it).
  template <typename F>
  absl::Status Enqueue(F work) {
    ++submitted_;
    if (!options_.deferred) {
      reached_ = submitted_;
      return work();
    }
    queue_.push_back({submitted_, std::function<absl::Status()>(std::move(work))});
    return absl::OkStatus();
  }
  absl::Status Lost() const { return DeviceLostError(name_, "lost on purpose by the test"); }

  static PartialBuffer* Own(Buffer& b) { return dynamic_cast<PartialBuffer*>(&b); }
  static const PartialBuffer* Own(const Buffer& b) { return dynamic_cast<const PartialBuffer*>(&b); }
  absl::Status Foreign(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", what, " was given another backend's buffer"));
  }

  std::unique_ptr<Backend> inner_;
  std::set<std::string> ops_;
  std::string name_;
  Options options_;
  DeviceInfo device_;
  Counts counts_;
  int64_t executes_ = 0;
  int64_t allocations_ = 0;
  bool lost_ = false;
  std::deque<Queued> queue_;
  SyncPoint submitted_ = 0, reached_ = 0;
};

}  // namespace kiln::test
