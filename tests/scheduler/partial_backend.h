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
#pragma once

#include <cstdint>
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
    int64_t uploads = 0, downloads = 0, copies = 0;
    int64_t upload_bytes = 0, download_bytes = 0, copy_bytes = 0;
    int64_t transfers() const { return uploads + downloads; }
  };

  // Runs the ops in `ops` (where the CPU backend runs them), nothing else.
  static std::shared_ptr<PartialBackend> Create(std::set<std::string> ops, std::string name = "partial") {
    BackendOptions options;
    options.threads = 1;
    auto cpu = CreateCpuBackend(options);
    if (!cpu.ok()) return nullptr;
    return std::shared_ptr<PartialBackend>(new PartialBackend(*std::move(cpu), std::move(ops), std::move(name)));
  }

  absl::string_view name() const override { return name_; }
  const DeviceInfo& device() const override { return device_; }

  Support supports(const Graph& graph, const Node& node) const override {
    if (!ops_.count(node.op)) return Support::No(absl::StrCat("op ", node.op, " is not in the test subset"));
    return inner_->supports(graph, node);
  }

  absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t bytes) override {
    auto inner = inner_->Allocate(bytes);
    if (!inner.ok()) return inner.status();
    return std::unique_ptr<Buffer>(new PartialBuffer(*std::move(inner)));
  }

  absl::Status Upload(Buffer& dst, size_t offset, const void* src, size_t n) override {
    PartialBuffer* d = Own(dst);
    if (!d) return Foreign("Upload");
    ++counts_.uploads;
    counts_.upload_bytes += static_cast<int64_t>(n);
    return inner_->Upload(*d->inner, offset, src, n);
  }
  absl::Status Download(const Buffer& src, size_t offset, void* dst, size_t n) override {
    const PartialBuffer* s = Own(src);
    if (!s) return Foreign("Download");
    ++counts_.downloads;
    counts_.download_bytes += static_cast<int64_t>(n);
    return inner_->Download(*s->inner, offset, dst, n);
  }
  absl::Status Copy(const Buffer& src, size_t so, Buffer& dst, size_t doff, size_t n) override {
    const PartialBuffer* s = Own(src);
    PartialBuffer* d = Own(dst);
    if (!s || !d) return Foreign("Copy");
    ++counts_.copies;
    counts_.copy_bytes += static_cast<int64_t>(n);
    return inner_->Copy(*s->inner, so, *d->inner, doff, n);
  }

  absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split, const Bindings& bindings) override {
    Bindings inner;
    inner.tensors.resize(bindings.tensors.size());
    std::vector<std::string> foreign;
    for (size_t id = 0; id < bindings.tensors.size(); ++id) {
      const Binding& b = bindings.tensors[id];
      if (!b.buffer) continue;
      const PartialBuffer* own = Own(*b.buffer);
      if (!own) {
        foreign.push_back(split.graph ? split.graph->tensors[id].name : absl::StrCat("#", id));
        continue;
      }
      inner.tensors[id] = {own->inner.get(), b.offset};
    }
    if (!foreign.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": tensors bound to another backend's buffers: ",
                                                     absl::StrJoin(foreign, ", ")));
    }
    return inner_->Prepare(split, inner);
  }
  absl::Status Execute(PreparedSplit& split, std::vector<NodeTiming>* timings) override {
    ++executes_;
    return inner_->Execute(split, timings);
  }
  absl::Status Wait() override { return inner_->Wait(); }
  PipelineStats pipeline_stats() const override { return inner_->pipeline_stats(); }

  const Counts& counts() const { return counts_; }
  int64_t executes() const { return executes_; }
  void ResetCounts() {
    counts_ = {};
    executes_ = 0;
  }

 private:
  // Device-like memory: the CPU buffer inside, but no host address outside.
  struct PartialBuffer : Buffer {
    explicit PartialBuffer(std::unique_ptr<Buffer> b) : inner(std::move(b)) {}
    size_t size() const override { return inner->size(); }
    std::unique_ptr<Buffer> inner;
  };

  PartialBackend(std::unique_ptr<Backend> inner, std::set<std::string> ops, std::string name)
      : inner_(std::move(inner)), ops_(std::move(ops)), name_(std::move(name)) {
    device_ = inner_->device();
    device_.backend = name_;
    device_.kind = "test";
    device_.name = absl::StrCat("CPU kernels for ", absl::StrJoin(ops_, ","));
  }

  static PartialBuffer* Own(Buffer& b) { return dynamic_cast<PartialBuffer*>(&b); }
  static const PartialBuffer* Own(const Buffer& b) { return dynamic_cast<const PartialBuffer*>(&b); }
  absl::Status Foreign(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", what, " was given another backend's buffer"));
  }

  std::unique_ptr<Backend> inner_;
  std::set<std::string> ops_;
  std::string name_;
  DeviceInfo device_;
  Counts counts_;
  int64_t executes_ = 0;
};

}  // namespace kiln::test
