// What api/'s files share: the Impl structs behind the public classes of
// include/kiln/kiln.h, conversions between public and internal types, and
// the guard that keeps exceptions from crossing the API.
#pragma once

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "graph/builder.h"
#include "graph/graph.h"
#include "kiln/kiln.h"
#include "scheduler/executor.h"
#include "scheduler/host_tensor.h"
#include "scheduler/model.h"

namespace kiln::api {

// Runs `f`, turning any exception into a status: bad_alloc is
// ResourceExhausted, anything else Internal. Every public call goes through
// this, so that no exception crosses the API.
template <class F>
auto Guard(absl::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of host memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": internal error: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": internal error (unknown exception)"));
  }
}

inline kiln::DType ToInternal(DType t) { return static_cast<kiln::DType>(t); }
// Debian's Abseil has its own string_view: the public API's std::string_view
// converts through these.
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline absl::string_view DName(DType t) { return Sv(DTypeName(t)); }
inline DType ToPublic(kiln::DType t) { return static_cast<DType>(t); }
TensorDesc DescOf(const kiln::TensorInfo& t);
// `st` with `prefix` before its message, its payloads kept (a lost device
// stays IsDeviceLost).
absl::Status Annotate(const absl::Status& st, absl::string_view prefix);
// Made by Entry::plan() / profile() (entry.cc).
Plan MakePlan(const std::string& entry, const kiln::Executable& exe);
Profile MakeProfile(const kiln::Executable& exe);
PipelineStats ToPublic(const kiln::PipelineStats& s);

struct Backend::Impl {
  std::shared_ptr<kiln::Backend> backend;
  std::string name;
};

struct GraphBuilder::Impl {
  explicit Impl(std::string name) : builder(std::move(name)) {}
  kiln::GraphBuilder builder;
  absl::Status status;  // the wrapper's own first error (sizes, dtypes)
  absl::Status Status() const { return status.ok() ? builder.status() : status; }
};

// Runs of one model exclude each other (its entries share states); state
// access waits for them too. A Submit holds the model until its Wait, which
// may come from another thread, hence a flag and not a held mutex.
class RunLock {
 public:
  // Waits until no run of the model is in progress, then takes it.
  // FailedPrecondition, rather than a deadlock, when this thread holds it
  // through a Submit that is not waited for.
  absl::Status Acquire(absl::string_view who);
  void Release();
  // Marks the holder as a Submit made by this thread (released by Wait).
  void MarkSubmitted(std::string entry);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  std::optional<std::thread::id> submitter_;
  std::string submitted_entry_;
};

// Holds a model's run lock for a scope.
class RunScope {
 public:
  explicit RunScope(RunLock& lock) : lock_(lock) {}
  absl::Status Acquire(absl::string_view who) {
    auto st = lock_.Acquire(who);
    held_ = st.ok();
    return st;
  }
  ~RunScope() {
    if (held_) lock_.Release();
  }

 private:
  RunLock& lock_;
  bool held_ = false;
};

struct Model::Impl {
  // Waits for a submitted run that was never waited for, so that no device
  // is still using the buffers freed next.
  ~Impl();

  std::vector<std::unique_ptr<Entry>> entries;
  std::vector<Backend> backends;
  PrepareOptions options;
  std::unique_ptr<kiln::Model> model;  // set by a successful Prepare
  PrepareStats stats;
  RunLock run;

  Entry* Find(absl::string_view name) const;
  absl::Status AddGraph(std::string entry, kiln::Graph graph);
  absl::Status PrepareEntry(Entry& entry);
  std::string EntryList() const;
};

struct Entry::Impl {
  std::string name;
  Model::Impl* model = nullptr;
  std::optional<kiln::Graph> graph;  // until prepared
  kiln::Executable* exe = nullptr;   // owned by model->model
  std::vector<TensorDesc> inputs, outputs, states;
  std::map<std::string, std::string> metadata;
  // Serializes the entry's calls. Lock order: the model's run lock first,
  // then this.
  mutable std::mutex mu;
  std::condition_variable idle;  // signalled by Wait
  bool in_flight = false;        // Submit done, Wait not yet
  std::thread::id submitter;
};

// Constructs the classes whose constructors are private.
struct Access {
  static Backend MakeBackend(std::shared_ptr<kiln::Backend> b) {
    std::string name(b->name());
    return Backend(std::make_shared<Backend::Impl>(Backend::Impl{std::move(b), std::move(name)}));
  }
  static Backend::Impl& Of(const Backend& b) { return *b.impl_; }
  static GraphBuilder::Impl& Of(GraphBuilder& b) { return *b.impl_; }
  static Entry::Impl& Of(const Entry& e) { return *e.impl_; }
  static Model::Impl& Of(const Model& m) { return *m.impl_; }
  // Takes the bytes of a host tensor (no copy).
  static HostArray MakeArray(kiln::HostTensor&& t) {
    HostArray a;
    a.dtype_ = ToPublic(t.dtype);
    a.dims_ = std::move(t.dims);
    a.bytes_ = std::move(t.data);
    return a;
  }
  static std::unique_ptr<Entry> MakeEntry(std::unique_ptr<Entry::Impl> impl) {
    return std::unique_ptr<Entry>(new Entry(std::move(impl)));
  }
};

}  // namespace kiln::api
