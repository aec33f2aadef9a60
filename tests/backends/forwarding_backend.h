// A backend that forwards every call to another one: the base of the test
// backends that change one behaviour (decline an op, inject a fault).
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "backends/backend.h"

namespace kiln::test {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}

  absl::string_view name() const override { return inner_->name(); }
  const DeviceInfo& device() const override { return inner_->device(); }
  BackendLimits limits() const override { return inner_->limits(); }
  Support supports(const Graph& g, const Node& n) const override { return inner_->supports(g, n); }
  absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t n, BufferUsage usage, absl::string_view label) override {
    return inner_->Allocate(n, usage, label);
  }
  absl::StatusOr<std::unique_ptr<Buffer>> WrapHost(const void* data, size_t n) override {
    return inner_->WrapHost(data, n);
  }
  absl::Status Upload(Buffer& d, size_t o, const void* s, size_t n) override { return inner_->Upload(d, o, s, n); }
  absl::Status Download(const Buffer& s, size_t o, void* d, size_t n) override { return inner_->Download(s, o, d, n); }
  absl::Status Copy(const Buffer& s, size_t so, Buffer& d, size_t doff, size_t n) override {
    return inner_->Copy(s, so, d, doff, n);
  }
  absl::Status Fill(Buffer& d, size_t o, size_t n, uint8_t v) override { return inner_->Fill(d, o, n, v); }
  absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& s, const Bindings& b,
                                                         const PrepareOptions& o) override {
    return inner_->Prepare(s, b, o);
  }
  absl::StatusOr<SyncPoint> Execute(PreparedSplit& s, const ExecuteOptions& o) override {
    return inner_->Execute(s, o);
  }
  absl::Status ReadTimings(PreparedSplit& s, std::vector<NodeTiming>* out) override {
    return inner_->ReadTimings(s, out);
  }
  absl::StatusOr<SyncPoint> Flush() override { return inner_->Flush(); }
  absl::Status Wait(SyncPoint p) override { return inner_->Wait(p); }
  PipelineStats pipeline_stats() const override { return inner_->pipeline_stats(); }

 protected:
  std::shared_ptr<Backend> inner_;
};

}  // namespace kiln::test
