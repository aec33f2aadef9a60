#include "scheduler/resources.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kiln {
namespace {

absl::Status WithContext(const absl::Status& st, absl::string_view context) { return Annotate(st, context); }

uint64_t AlignUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

// Same bytes: same file range, or equal content.
std::string Identity(const ConstantData& c) {
  if (!c.origin.empty()) return c.origin;
  const absl::string_view bytes(reinterpret_cast<const char*>(c.data), c.size);
  return absl::StrCat("content:", c.size, ":", absl::HashOf(bytes));
}

bool SameBytes(const ConstantData& a, const ConstantData& b) {
  if (a.size != b.size) return false;
  if (!a.origin.empty() && a.origin == b.origin) return true;
  return a.size == 0 || a.data == b.data || std::memcmp(a.data, b.data, a.size) == 0;
}

}  // namespace

ModelResources::~ModelResources() {
  // Buffers before the backends that made them.
  states_.clear();
  weight_buffers_.clear();
}

absl::Status ModelResources::BindWeights(const std::shared_ptr<Backend>& backend_ptr, const Graph& graph,
                                         const std::vector<int>& ids, bool wrap, std::vector<Binding>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Backend& backend = *backend_ptr;
  if (std::find(backends_.begin(), backends_.end(), backend_ptr) == backends_.end()) {
    backends_.push_back(backend_ptr);
  }
  const BackendLimits limits = backend.limits();
  const uint64_t align = std::max<uint64_t>(limits.buffer_alignment, 64);
  out->assign(ids.size(), Binding{});

  // Storage tensors (a constant view is bound at its base).
  struct Pending {
    int tensor;
    std::string key;
  };
  std::vector<Pending> pending;  // new to this backend, to upload
  absl::flat_hash_map<std::string, int> pending_index;
  // Each id's identity, computed once (hashing inline weights reads them).
  std::vector<std::string> keys(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int root = graph.StorageOf(ids[i]);
    const TensorInfo& t = graph.tensors[root];
    if (!t.constant) return absl::InternalError(absl::StrCat("tensor ", Describe(t), " is not a constant"));
    std::string& key = keys[i];
    key = Identity(*t.constant);
    auto it = weights_.find(std::make_pair(&backend, key));
    if (it != weights_.end() && SameBytes(*it->second.data, *t.constant)) {
      continue;
    }
    if (it != weights_.end()) key = absl::StrCat(key, ":", root, ":", graph.name);  // a hash collision
    if (pending_index.contains(key)) continue;
    // Host memory used in place where the backend can.
    const ConstantData& c = *t.constant;
    const size_t ha = limits.host_import_alignment;
    if (wrap && ha > 0 && c.size > 0 && reinterpret_cast<uintptr_t>(c.data) % ha == 0) {
      auto wrapped = backend.WrapHost(c.data, c.size);
      if (wrapped.ok()) {
        Weight w{&backend, wrapped->get(), 0, c.size, t.constant};
        stats_.bytes_wrapped += static_cast<int64_t>(c.size);
        stats_.bytes_held += static_cast<int64_t>(c.size);
        weight_buffers_.push_back(std::move(*wrapped));
        weights_[std::make_pair(&backend, key)] = std::move(w);
        continue;
      }
    }
    pending_index[key] = static_cast<int>(pending.size());
    pending.push_back({root, key});
  }

  // The rest: packed into chunks, uploaded, waited for once.
  const uint64_t chunk_cap = std::min<uint64_t>(limits.max_allocation, kWeightChunkBytes);
  size_t next = 0;
  while (next < pending.size()) {
    uint64_t bytes = 0;
    size_t end = next;
    while (end < pending.size()) {
      const uint64_t size = std::max<uint64_t>(graph.tensors[pending[end].tensor].constant->size, 1);
      const uint64_t at = AlignUp(bytes, align);
      if (end > next && at + size > chunk_cap) break;
      bytes = at + size;
      ++end;
    }
    const TensorInfo& first = graph.tensors[pending[next].tensor];
    if (bytes > limits.max_allocation) {
      return absl::ResourceExhaustedError(absl::StrCat(
          backend.name(), ": constant ", Describe(first), " needs ", bytes,
          " bytes, more than the largest allocation the device allows (", limits.max_allocation, ")"));
    }
    const std::string label = end - next == 1 ? absl::StrCat("constant ", Describe(first))
                                              : absl::StrCat(end - next, " weights (", Describe(first), ", ...)");
    auto buffer = backend.Allocate(static_cast<size_t>(bytes), BufferUsage::kWeights, label);
    if (!buffer.ok()) {
      return WithContext(buffer.status(), absl::StrCat("allocating ", bytes, " bytes for ", label, " on ",
                                                       backend.name()));
    }
    ++stats_.allocations;
    uint64_t at = 0;
    for (size_t i = next; i < end; ++i) {
      const TensorInfo& t = graph.tensors[pending[i].tensor];
      const ConstantData& c = *t.constant;
      at = AlignUp(at, align);
      if (c.size > 0) {
        if (auto st = backend.Upload(**buffer, at, c.data, c.size); !st.ok()) {
          return WithContext(st, absl::StrCat("uploading constant ", Describe(t), " to ", backend.name()));
        }
        ++stats_.uploads;
      }
      weights_[std::make_pair(&backend, pending[i].key)] = Weight{&backend, buffer->get(), at, c.size, t.constant};
      stats_.bytes_uploaded += static_cast<int64_t>(c.size);
      stats_.bytes_held += static_cast<int64_t>(c.size);
      at += std::max<uint64_t>(c.size, 1);
    }
    weight_buffers_.push_back(std::move(*buffer));
    next = end;
  }
  if (!pending.empty()) {
    auto point = backend.Flush();
    absl::Status st = point.ok() ? backend.Wait(*point) : point.status();
    if (!st.ok()) return WithContext(st, absl::StrCat("uploading weights to ", backend.name()));
  }

  // Every id's binding.
  for (size_t i = 0; i < ids.size(); ++i) {
    const int id = ids[i];
    const int root = graph.StorageOf(id);
    const ConstantData& c = *graph.tensors[root].constant;
    auto it = weights_.find(std::make_pair(&backend, keys[i]));
    if (it == weights_.end()) {
      return absl::InternalError(absl::StrCat("constant ", Describe(graph.tensors[root]), " was not bound"));
    }
    if (it->second.data.get() != graph.tensors[root].constant.get()) {
      stats_.bytes_shared += static_cast<int64_t>(c.size);
    }
    const size_t view_offset = id == root ? 0 : static_cast<size_t>(graph.tensors[id].offset);
    (*out)[i] = {it->second.buffer, it->second.offset + view_offset};
  }
  return absl::OkStatus();
}

ModelResources::State* ModelResources::FindStateLocked(absl::string_view name) const {
  for (const auto& s : states_) {
    if (s->name == name) return s.get();
  }
  return nullptr;
}

absl::Status ModelResources::ZeroLocked(State& s) {
  Backend& b = *s.backend;
  absl::Status st = b.Fill(*s.buffer, 0, s.buffer->size(), 0);
  if (st.ok()) {
    auto point = b.Flush();
    st = point.ok() ? b.Wait(*point) : point.status();
  }
  if (!st.ok()) return WithContext(st, absl::StrCat("zeroing state '", s.name, "' on ", b.name()));
  return absl::OkStatus();
}

absl::StatusOr<ModelResources::State*> ModelResources::BindState(const std::shared_ptr<Backend>& backend,
                                                                 const TensorInfo& tensor,
                                                                 absl::string_view graph_name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (State* s = FindStateLocked(tensor.name)) {
    if (s->dtype != tensor.dtype || s->dims != tensor.dims) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state ", Describe(tensor), " of graph '", graph_name, "' does not match the state of that name of graph '",
          s->first_graph, "', ", DTypeName(s->dtype), " ", ShapeString(s->dims)));
    }
    if (s->backend != backend) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state '", tensor.name, "' lives on ", s->backend->name(), " (placed by graph '", s->first_graph,
          "'), but graph '", graph_name, "' computes it on ", backend->name(),
          ": give both graphs the same backends"));
    }
    return s;
  }
  auto s = std::make_unique<State>();
  s->name = tensor.name;
  s->dtype = tensor.dtype;
  s->dims = tensor.dims;
  s->backend = backend;
  s->first_graph = std::string(graph_name);
  const int64_t bytes = ContiguousBytes(tensor.dtype, tensor.dims);
  auto buffer = backend->Allocate(static_cast<size_t>(bytes), BufferUsage::kState,
                                  absl::StrCat("state ", Describe(tensor)));
  if (!buffer.ok()) {
    return WithContext(buffer.status(), absl::StrCat("allocating ", bytes, " bytes for state ", Describe(tensor),
                                                     " on ", backend->name()));
  }
  s->buffer = std::move(*buffer);
  if (auto st = ZeroLocked(*s); !st.ok()) return st;
  states_.push_back(std::move(s));
  return states_.back().get();
}

std::vector<std::string> ModelResources::StateNames() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& s : states_) names.push_back(s->name);
  return names;
}

absl::StatusOr<HostTensor> ModelResources::ReadState(absl::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  const State* s = FindStateLocked(name);
  if (!s) return absl::NotFoundError(absl::StrCat("the model has no state named '", absl::CHexEscape(name), "'"));
  HostTensor out = HostTensor::Zeros(s->dtype, s->dims);
  if (auto st = s->backend->Download(*s->buffer, 0, out.data.data(), out.data.size()); !st.ok()) {
    return WithContext(st, absl::StrCat("reading state '", s->name, "' from ", s->backend->name()));
  }
  return out;
}

absl::Status ModelResources::WriteState(absl::string_view name, const void* data, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  State* s = FindStateLocked(name);
  if (!s) return absl::NotFoundError(absl::StrCat("the model has no state named '", absl::CHexEscape(name), "'"));
  if (bytes != s->buffer->size()) {
    return absl::InvalidArgumentError(absl::StrCat("state '", s->name, "' (", DTypeName(s->dtype), " ",
                                                   ShapeString(s->dims), ") needs ", s->buffer->size(),
                                                   " bytes, was given ", bytes));
  }
  if (bytes > 0 && !data) return absl::InvalidArgumentError(absl::StrCat("state '", s->name, "' was given no data"));
  if (auto st = s->backend->Upload(*s->buffer, 0, data, bytes); !st.ok()) {
    return WithContext(st, absl::StrCat("writing state '", s->name, "' on ", s->backend->name()));
  }
  return absl::OkStatus();
}

absl::Status ModelResources::ZeroState(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  State* s = FindStateLocked(name);
  if (!s) return absl::NotFoundError(absl::StrCat("the model has no state named '", absl::CHexEscape(name), "'"));
  return ZeroLocked(*s);
}

absl::Status ModelResources::ZeroStates() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : states_) {
    if (auto st = ZeroLocked(*s); !st.ok()) return st;
  }
  return absl::OkStatus();
}

WeightStats ModelResources::weight_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace kiln
