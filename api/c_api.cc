// The C API (include/kiln/kiln_c.h) over the C++ one: handles that own C++
// objects, a thread-local message for the last failure, and a guard in
// every function so that no exception reaches C.
#include "kiln/kiln_c.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api/internal.h"

using kiln::api::Backend;
using kiln::api::DType;
using kiln::api::Entry;
using kiln::api::Model;
using kiln::api::TensorDesc;

struct kiln_backend {
  Backend backend;
  std::string device_name;
};

struct kiln_entry {
  Entry* entry = nullptr;
};

struct kiln_model {
  Model model;
  // One handle per entry, in entries() order; states(): refreshed after
  // every change (the infos' names point into them).
  std::vector<std::unique_ptr<kiln_entry>> entries;
  std::vector<TensorDesc> states;

  void Sync() {
    for (size_t i = entries.size(); i < model.entries().size(); ++i) {
      auto e = model.entry(model.entries()[i]);
      if (e.ok()) entries.push_back(std::make_unique<kiln_entry>(kiln_entry{*e}));
    }
    states = model.states();
  }
};

namespace {

thread_local std::string last_error;

kiln_code Result(const absl::Status& st) {
  if (st.ok()) {
    last_error.clear();
    return KILN_OK;
  }
  try {
    last_error = std::string(st.message());
  } catch (...) {
    last_error.clear();
  }
  return static_cast<kiln_code>(st.code());
}

// Runs `f` (returning absl::Status) with no exception escaping.
template <class F>
kiln_code Call(const char* what, F&& f) {
  return Result(kiln::api::Guard(what, std::forward<F>(f)));
}

absl::Status Null(const char* function, const char* arg) {
  return absl::InvalidArgumentError(absl::StrCat(function, ": ", arg, " is NULL"));
}

#define KILN_CHECK_ARG(function, arg) \
  if ((arg) == nullptr) return Null(function, #arg)

char* CopyString(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

absl::Status ReturnString(const std::string& s, char** out) {
  *out = CopyString(s);
  if (!*out) return absl::ResourceExhaustedError("out of host memory for the returned string");
  return absl::OkStatus();
}

absl::Status FillInfo(const TensorDesc& d, kiln_tensor_info* info) {
  std::memset(info, 0, sizeof *info);
  info->name = d.name.c_str();
  info->dtype = static_cast<kiln_dtype>(d.dtype);
  info->rank = static_cast<int>(d.dims.size());
  for (size_t i = 0; i < d.dims.size() && i < KILN_MAX_RANK; ++i) info->dims[i] = d.dims[i];
  info->bytes = d.bytes;
  return absl::OkStatus();
}

absl::Status IndexError(const char* function, size_t index, size_t count) {
  return absl::OutOfRangeError(absl::StrCat(function, ": index ", index, " is past the ", count, " there are"));
}

bool ValidDType(int d) { return d >= KILN_F32 && d <= KILN_Q8_0; }

}  // namespace

extern "C" {

const char* kiln_last_error(void) { return last_error.c_str(); }

const char* kiln_code_name(kiln_code code) {
  switch (code) {
    case KILN_OK: return "OK";
    case KILN_CANCELLED: return "CANCELLED";
    case KILN_UNKNOWN: return "UNKNOWN";
    case KILN_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case KILN_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case KILN_NOT_FOUND: return "NOT_FOUND";
    case KILN_ALREADY_EXISTS: return "ALREADY_EXISTS";
    case KILN_PERMISSION_DENIED: return "PERMISSION_DENIED";
    case KILN_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case KILN_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case KILN_ABORTED: return "ABORTED";
    case KILN_OUT_OF_RANGE: return "OUT_OF_RANGE";
    case KILN_UNIMPLEMENTED: return "UNIMPLEMENTED";
    case KILN_INTERNAL: return "INTERNAL";
    case KILN_UNAVAILABLE: return "UNAVAILABLE";
    case KILN_DATA_LOSS: return "DATA_LOSS";
    case KILN_UNAUTHENTICATED: return "UNAUTHENTICATED";
  }
  return "UNKNOWN_CODE";
}

const char* kiln_version(void) { return kiln::api::Version(); }

const char* kiln_dtype_name(kiln_dtype dtype) {
  if (!ValidDType(dtype)) return nullptr;
  return kiln::api::DTypeName(static_cast<DType>(dtype)).data();  // kiln's names are NUL-terminated literals
}

kiln_code kiln_contiguous_bytes(kiln_dtype dtype, const int64_t* dims, size_t rank, size_t* bytes) {
  return Call("kiln_contiguous_bytes", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_contiguous_bytes", bytes);
    if (rank > 0) KILN_CHECK_ARG("kiln_contiguous_bytes", dims);
    if (!ValidDType(dtype)) return absl::InvalidArgumentError(absl::StrCat("kiln_contiguous_bytes: dtype ", static_cast<int>(dtype), " is not a kiln_dtype"));
    auto n = kiln::api::ContiguousBytes(static_cast<DType>(dtype), absl::MakeConstSpan(dims, rank));
    if (!n.ok()) return n.status();
    *bytes = *n;
    return absl::OkStatus();
  });
}

void kiln_string_free(char* s) { std::free(s); }

// ---- Backends

size_t kiln_backend_name_count(void) { return kiln::api::BackendNames().size(); }

const char* kiln_backend_name_at(size_t index) {
  // The registry's names live as long as the process; keep C strings of them.
  static const std::vector<std::string>* names = [] {
    try {
      return new std::vector<std::string>(kiln::api::BackendNames());
    } catch (...) {
      return new std::vector<std::string>();
    }
  }();
  return index < names->size() ? (*names)[index].c_str() : nullptr;
}

kiln_code kiln_list_devices(const char* name, char** text) {
  return Call("kiln_list_devices", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_list_devices", name);
    KILN_CHECK_ARG("kiln_list_devices", text);
    *text = nullptr;
    auto devices = kiln::api::ListDevices(name);
    if (!devices.ok()) return devices.status();
    std::string out;
    for (size_t i = 0; i < devices->size(); ++i) {
      const auto& d = (*devices)[i];
      absl::StrAppend(&out, i, "\t", d.kind, "\t", d.name, "\t", d.driver, "\t", d.memory_bytes, "\n");
    }
    return ReturnString(out, text);
  });
}

kiln_code kiln_backend_open(const char* name, const kiln_backend_options* options, kiln_backend** out) {
  return Call("kiln_backend_open", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_backend_open", name);
    KILN_CHECK_ARG("kiln_backend_open", out);
    *out = nullptr;
    kiln::api::BackendOptions o;
    if (options) {
      if (options->threads < 0) return absl::InvalidArgumentError("kiln_backend_open: threads is negative");
      o.threads = options->threads;
      if (options->device) o.device = options->device;
      if (options->cache_dir) o.cache_dir = options->cache_dir;
      if (options->flags && *options->flags) {
        for (absl::string_view kv : absl::StrSplit(options->flags, ',')) {
          std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
          if (p.first.empty() || kv.find('=') == absl::string_view::npos) {
            return absl::InvalidArgumentError(absl::StrCat("kiln_backend_open: flag '", kv, "' is not key=value"));
          }
          o.flags[p.first] = p.second;
        }
      }
    }
    auto b = Backend::Open(name, o);
    if (!b.ok()) return b.status();
    auto handle = std::make_unique<kiln_backend>(kiln_backend{*b, b->device().name});
    *out = handle.release();
    return absl::OkStatus();
  });
}

void kiln_backend_free(kiln_backend* backend) { delete backend; }

const char* kiln_backend_name(const kiln_backend* backend) { return backend ? backend->backend.name().c_str() : nullptr; }
const char* kiln_backend_device_name(const kiln_backend* backend) {
  return backend ? backend->device_name.c_str() : nullptr;
}

// ---- Models

namespace {

absl::Status NewModel(absl::StatusOr<Model> m, kiln_model** out) {
  if (!m.ok()) return m.status();
  auto handle = std::make_unique<kiln_model>(kiln_model{*std::move(m), {}, {}});
  handle->Sync();
  *out = handle.release();
  return absl::OkStatus();
}

}  // namespace

kiln_code kiln_model_load(const char* path, kiln_model** out) {
  return Call("kiln_model_load", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_load", path);
    KILN_CHECK_ARG("kiln_model_load", out);
    *out = nullptr;
    return NewModel(Model::Load(path), out);
  });
}

kiln_code kiln_model_from_bytes(const void* data, size_t size, const char* folder, const char* entry,
                                kiln_model** out) {
  return Call("kiln_model_from_bytes", [&]() -> absl::Status {
    if (size > 0) KILN_CHECK_ARG("kiln_model_from_bytes", data);
    KILN_CHECK_ARG("kiln_model_from_bytes", out);
    *out = nullptr;
    return NewModel(Model::FromBytes(std::string_view(static_cast<const char*>(data), size), folder ? folder : "",
                                     entry ? entry : std::string(kiln::api::kFirstEntry)),
                    out);
  });
}

void kiln_model_free(kiln_model* model) { delete model; }

kiln_code kiln_model_add_entry_file(kiln_model* model, const char* entry, const char* path) {
  return Call("kiln_model_add_entry_file", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_add_entry_file", model);
    KILN_CHECK_ARG("kiln_model_add_entry_file", entry);
    KILN_CHECK_ARG("kiln_model_add_entry_file", path);
    absl::Status st = model->model.AddEntryFile(entry, path);
    model->Sync();
    return st;
  });
}

kiln_code kiln_model_add_entry_bytes(kiln_model* model, const char* entry, const void* data, size_t size,
                                     const char* folder) {
  return Call("kiln_model_add_entry_bytes", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_add_entry_bytes", model);
    KILN_CHECK_ARG("kiln_model_add_entry_bytes", entry);
    if (size > 0) KILN_CHECK_ARG("kiln_model_add_entry_bytes", data);
    absl::Status st = model->model.AddEntryBytes(entry, std::string_view(static_cast<const char*>(data), size),
                                                 folder ? folder : "");
    model->Sync();
    return st;
  });
}

kiln_prepare_options kiln_prepare_options_default(void) {
  const kiln::api::PrepareOptions d;
  kiln_prepare_options o;
  o.strict = d.strict;
  o.allow_profiling = d.allow_profiling;
  o.profile = d.profile;
  o.merge_islands = d.merge_islands;
  o.wrap_constants = d.wrap_constants;
  return o;
}

kiln_code kiln_model_prepare(kiln_model* model, kiln_backend* const* backends, size_t count,
                             const kiln_prepare_options* options) {
  return Call("kiln_model_prepare", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_prepare", model);
    if (count > 0) KILN_CHECK_ARG("kiln_model_prepare", backends);
    std::vector<Backend> list;
    for (size_t i = 0; i < count; ++i) {
      if (!backends[i]) return absl::InvalidArgumentError(absl::StrCat("kiln_model_prepare: backends[", i, "] is NULL"));
      list.push_back(backends[i]->backend);
    }
    const kiln_prepare_options o = options ? *options : kiln_prepare_options_default();
    kiln::api::PrepareOptions po;
    po.strict = o.strict != 0;
    po.allow_profiling = o.allow_profiling != 0;
    po.profile = o.profile != 0;
    po.merge_islands = o.merge_islands != 0;
    po.wrap_constants = o.wrap_constants != 0;
    absl::Status st = model->model.Prepare(std::move(list), po);
    model->Sync();
    return st;
  });
}

size_t kiln_model_entry_count(const kiln_model* model) { return model ? model->entries.size() : 0; }

const char* kiln_model_entry_name(const kiln_model* model, size_t index) {
  if (!model || index >= model->entries.size()) return nullptr;
  return model->entries[index]->entry->name().c_str();
}

kiln_code kiln_model_entry(kiln_model* model, const char* name, kiln_entry** out) {
  return Call("kiln_model_entry", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_entry", model);
    KILN_CHECK_ARG("kiln_model_entry", out);
    *out = nullptr;
    auto e = model->model.entry(name ? name : "");
    if (!e.ok()) return e.status();
    for (const auto& h : model->entries) {
      if (h->entry == *e) {
        *out = h.get();
        return absl::OkStatus();
      }
    }
    return absl::InternalError("kiln_model_entry: the entry has no handle");
  });
}

size_t kiln_model_state_count(const kiln_model* model) { return model ? model->states.size() : 0; }

kiln_code kiln_model_state_info(const kiln_model* model, size_t index, kiln_tensor_info* info) {
  return Call("kiln_model_state_info", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_state_info", model);
    KILN_CHECK_ARG("kiln_model_state_info", info);
    if (index >= model->states.size()) return IndexError("kiln_model_state_info", index, model->states.size());
    return FillInfo(model->states[index], info);
  });
}

kiln_code kiln_model_read_state(const kiln_model* model, const char* name, void* dst, size_t bytes) {
  return Call("kiln_model_read_state", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_read_state", model);
    KILN_CHECK_ARG("kiln_model_read_state", name);
    if (bytes > 0) KILN_CHECK_ARG("kiln_model_read_state", dst);
    return model->model.ReadState(name, dst, bytes);
  });
}

kiln_code kiln_model_write_state(kiln_model* model, const char* name, const void* data, size_t bytes) {
  return Call("kiln_model_write_state", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_write_state", model);
    KILN_CHECK_ARG("kiln_model_write_state", name);
    if (bytes > 0) KILN_CHECK_ARG("kiln_model_write_state", data);
    return model->model.WriteState(name, data, bytes);
  });
}

kiln_code kiln_model_zero_states(kiln_model* model) {
  return Call("kiln_model_zero_states", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_model_zero_states", model);
    return model->model.ZeroStates();
  });
}

// ---- Entries

size_t kiln_entry_input_count(const kiln_entry* entry) { return entry ? entry->entry->inputs().size() : 0; }

kiln_code kiln_entry_input_info(const kiln_entry* entry, size_t index, kiln_tensor_info* info) {
  return Call("kiln_entry_input_info", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_input_info", entry);
    KILN_CHECK_ARG("kiln_entry_input_info", info);
    const auto& list = entry->entry->inputs();
    if (index >= list.size()) return IndexError("kiln_entry_input_info", index, list.size());
    return FillInfo(list[index], info);
  });
}

size_t kiln_entry_output_count(const kiln_entry* entry) { return entry ? entry->entry->outputs().size() : 0; }

kiln_code kiln_entry_output_info(const kiln_entry* entry, size_t index, kiln_tensor_info* info) {
  return Call("kiln_entry_output_info", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_output_info", entry);
    KILN_CHECK_ARG("kiln_entry_output_info", info);
    const auto& list = entry->entry->outputs();
    if (index >= list.size()) return IndexError("kiln_entry_output_info", index, list.size());
    return FillInfo(list[index], info);
  });
}

const char* kiln_entry_metadata(const kiln_entry* entry, const char* key) {
  if (!entry || !key) return nullptr;
  const auto& m = entry->entry->metadata();
  auto it = m.find(key);
  return it == m.end() ? nullptr : it->second.c_str();
}

kiln_code kiln_entry_set_input(kiln_entry* entry, const char* name, kiln_dtype dtype, const int64_t* dims,
                               size_t rank, const void* data, size_t size) {
  return Call("kiln_entry_set_input", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_set_input", entry);
    KILN_CHECK_ARG("kiln_entry_set_input", name);
    if (rank > 0) KILN_CHECK_ARG("kiln_entry_set_input", dims);
    if (size > 0) KILN_CHECK_ARG("kiln_entry_set_input", data);
    if (!ValidDType(dtype)) {
      return absl::InvalidArgumentError(absl::StrCat("kiln_entry_set_input: dtype ", static_cast<int>(dtype), " is not a kiln_dtype"));
    }
    if (rank > KILN_MAX_RANK) {
      return absl::InvalidArgumentError(absl::StrCat("kiln_entry_set_input: rank ", rank, " is over ", KILN_MAX_RANK));
    }
    return entry->entry->SetInput(name, static_cast<DType>(dtype), absl::MakeConstSpan(dims, rank), data, size);
  });
}

kiln_code kiln_entry_set_input_npy(kiln_entry* entry, const char* name, const char* path) {
  return Call("kiln_entry_set_input_npy", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_set_input_npy", entry);
    KILN_CHECK_ARG("kiln_entry_set_input_npy", name);
    KILN_CHECK_ARG("kiln_entry_set_input_npy", path);
    return entry->entry->SetInputFromNpy(name, path);
  });
}

kiln_code kiln_entry_input_buffer(kiln_entry* entry, const char* name, void** data, size_t* size) {
  return Call("kiln_entry_input_buffer", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_input_buffer", entry);
    KILN_CHECK_ARG("kiln_entry_input_buffer", name);
    KILN_CHECK_ARG("kiln_entry_input_buffer", data);
    KILN_CHECK_ARG("kiln_entry_input_buffer", size);
    *data = nullptr;
    *size = 0;
    auto span = entry->entry->InputBuffer(name);
    if (!span.ok()) return span.status();
    *data = span->data();
    *size = span->size();
    return absl::OkStatus();
  });
}

kiln_code kiln_entry_output_buffer(const kiln_entry* entry, const char* name, const void** data, size_t* size) {
  return Call("kiln_entry_output_buffer", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_output_buffer", entry);
    KILN_CHECK_ARG("kiln_entry_output_buffer", name);
    KILN_CHECK_ARG("kiln_entry_output_buffer", data);
    KILN_CHECK_ARG("kiln_entry_output_buffer", size);
    *data = nullptr;
    *size = 0;
    auto span = entry->entry->OutputBuffer(name);
    if (!span.ok()) return span.status();
    *data = span->data();
    *size = span->size();
    return absl::OkStatus();
  });
}

kiln_code kiln_entry_run(kiln_entry* entry) {
  return Call("kiln_entry_run", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_run", entry);
    return entry->entry->Run();
  });
}

kiln_code kiln_entry_submit(kiln_entry* entry) {
  return Call("kiln_entry_submit", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_submit", entry);
    return entry->entry->Submit();
  });
}

kiln_code kiln_entry_wait(kiln_entry* entry) {
  return Call("kiln_entry_wait", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_wait", entry);
    return entry->entry->Wait();
  });
}

kiln_code kiln_entry_read_output(const kiln_entry* entry, const char* name, void* dst, size_t size) {
  return Call("kiln_entry_read_output", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_read_output", entry);
    KILN_CHECK_ARG("kiln_entry_read_output", name);
    if (size > 0) KILN_CHECK_ARG("kiln_entry_read_output", dst);
    return entry->entry->ReadOutput(name, dst, size);
  });
}

kiln_code kiln_entry_plan_text(const kiln_entry* entry, char** text) {
  return Call("kiln_entry_plan_text", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_plan_text", entry);
    KILN_CHECK_ARG("kiln_entry_plan_text", text);
    *text = nullptr;
    auto plan = entry->entry->plan();
    if (!plan.ok()) return plan.status();
    return ReturnString(plan->ToText(), text);
  });
}

kiln_code kiln_entry_plan_json(const kiln_entry* entry, char** json) {
  return Call("kiln_entry_plan_json", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_plan_json", entry);
    KILN_CHECK_ARG("kiln_entry_plan_json", json);
    *json = nullptr;
    auto plan = entry->entry->plan();
    if (!plan.ok()) return plan.status();
    return ReturnString(plan->ToJson(), json);
  });
}

kiln_code kiln_entry_set_profiling(kiln_entry* entry, int on) {
  return Call("kiln_entry_set_profiling", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_set_profiling", entry);
    return entry->entry->SetProfiling(on != 0);
  });
}

kiln_code kiln_entry_profile_json(const kiln_entry* entry, char** json) {
  return Call("kiln_entry_profile_json", [&]() -> absl::Status {
    KILN_CHECK_ARG("kiln_entry_profile_json", entry);
    KILN_CHECK_ARG("kiln_entry_profile_json", json);
    *json = nullptr;
    auto profile = entry->entry->profile();
    if (!profile.ok()) return profile.status();
    return ReturnString(profile->ToJson(), json);
  });
}

}  // extern "C"
