// The _kiln extension module: the public C++ API (kiln/kiln.h) for Python.
// kiln/__init__.py re-exports it; docs/getting-started.md shows its use.
//
// Conventions: dtypes are their names ("f32", "f16", "bf16", "i32",
// "q8_0"); arrays follow arrays.h; a failed call raises kiln.Error (errors.h).
// Calls that wait for devices or read files release the GIL, so other Python
// threads run meanwhile (kiln's own thread rules, kiln.h, still hold).
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "arrays.h"
#include "errors.h"
#include "kiln/kiln.h"

namespace py = pybind11;

namespace kiln::python {
namespace {

using api::Backend;
using api::Entry;
using api::Model;

// Runs `f` without the GIL and returns its result.
template <typename F>
auto Unlocked(F&& f) {
  py::gil_scoped_release release;
  return f();
}

const api::TensorDesc* FindDesc(const std::vector<api::TensorDesc>& descs, std::string_view name) {
  for (const api::TensorDesc& d : descs) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::string Names(const std::vector<api::TensorDesc>& descs) {
  return absl::StrJoin(descs, ", ", [](std::string* out, const api::TensorDesc& d) { out->append(d.name); });
}

// The desc of `name` among an entry's inputs or, failing that, its states
// (SetInput sets a state by its name too).
const api::TensorDesc& InputDesc(const Entry& e, std::string_view name) {
  if (const api::TensorDesc* d = FindDesc(e.inputs(), name)) return *d;
  if (const api::TensorDesc* d = FindDesc(e.states(), name)) return *d;
  Raise(absl::NotFoundError(absl::StrCat("entry '", e.name(), "' has no input '", std::string(name), "' (inputs: ",
                                         Names(e.inputs()), "; states: ", Names(e.states()), ")")));
}

void SetInput(Entry& e, const std::string& name, py::handle value) {
  const api::TensorDesc& desc = InputDesc(e, name);
  py::array a = CheckedArray(desc, value, absl::StrCat("input '", name, "' of entry '", e.name(), "'"));
  // The array's own bytes go straight to the input's buffer (one copy, the
  // one kiln makes for any host input).
  const void* data = a.data();
  const size_t bytes = static_cast<size_t>(a.nbytes());
  Check(Unlocked([&] { return e.SetInput(name, desc.dtype, desc.dims, data, bytes); }));
}

void WriteState(Model& m, const std::string& name, py::handle value) {
  const std::vector<api::TensorDesc> states = m.states();
  const api::TensorDesc* desc = FindDesc(states, name);
  if (!desc) {
    Raise(absl::NotFoundError(absl::StrCat("the model has no state '", name, "' (states: ", Names(states), ")")));
  }
  py::array a = CheckedArray(*desc, value, absl::StrCat("state '", name, "'"));
  const void* data = a.data();
  const size_t bytes = static_cast<size_t>(a.nbytes());
  Check(Unlocked([&] { return m.WriteState(name, data, bytes); }));
}

std::string DescRepr(const api::TensorDesc& d) {
  return absl::StrCat("TensorDesc('", d.name, "', ", std::string(api::DTypeName(d.dtype)), ", [", absl::StrJoin(d.dims, ", "),
                      "])");
}

void BindInfo(py::module_& m) {
  py::class_<api::TensorDesc>(m, "TensorDesc", "A tensor's name, dtype name and shape (outermost first).")
      .def_readonly("name", &api::TensorDesc::name)
      .def_property_readonly("dtype", [](const api::TensorDesc& d) { return std::string(api::DTypeName(d.dtype)); })
      .def_property_readonly("shape", [](const api::TensorDesc& d) { return py::tuple(py::cast(d.dims)); })
      .def_readonly("bytes", &api::TensorDesc::bytes, "its contiguous size in bytes")
      .def_property_readonly("numpy_dtype", [](const api::TensorDesc& d) { return NumpyDType(d.dtype); },
                             "the NumPy dtype its arrays have (uint16 for bf16, uint8 for q8_0)")
      .def_property_readonly("numpy_shape",
                             [](const api::TensorDesc& d) { return py::tuple(py::cast(NumpyShape(d.dtype, d.dims))); })
      .def("__repr__", &DescRepr);

  py::class_<api::DeviceInfo>(m, "DeviceInfo", "A device a backend can use.")
      .def_readonly("backend", &api::DeviceInfo::backend)
      .def_readonly("kind", &api::DeviceInfo::kind)
      .def_readonly("name", &api::DeviceInfo::name)
      .def_readonly("driver", &api::DeviceInfo::driver)
      .def_readonly("id", &api::DeviceInfo::id)
      .def_readonly("memory_bytes", &api::DeviceInfo::memory_bytes)
      .def_readonly("compute_units", &api::DeviceInfo::compute_units)
      .def_readonly("subgroup_size", &api::DeviceInfo::subgroup_size)
      .def_readonly("features", &api::DeviceInfo::features)
      .def("__repr__", [](const api::DeviceInfo& d) {
        return absl::StrCat("DeviceInfo(backend='", d.backend, "', kind='", d.kind, "', name='", d.name, "')");
      });

  py::class_<api::PipelineStats>(m, "PipelineStats", "Counters of a backend's compute pipelines.")
      .def_readonly("created", &api::PipelineStats::created)
      .def_readonly("reused", &api::PipelineStats::reused)
      .def_readonly("loaded_from_disk", &api::PipelineStats::loaded_from_disk)
      .def_readonly("compile_ms", &api::PipelineStats::compile_ms)
      .def_readonly("disk_ms", &api::PipelineStats::disk_ms)
      .def("__repr__", [](const api::PipelineStats& s) {
        return absl::StrCat("PipelineStats(created=", s.created, ", reused=", s.reused,
                            ", loaded_from_disk=", s.loaded_from_disk, ", compile_ms=", s.compile_ms, ")");
      });

  py::class_<api::PrepareStats> prepare(m, "PrepareStats", "What Model.prepare cost.");
  py::class_<api::PrepareStats::PerBackend>(prepare, "PerBackend")
      .def_readonly("backend", &api::PrepareStats::PerBackend::backend)
      .def_readonly("pipelines", &api::PrepareStats::PerBackend::pipelines);
  prepare.def_readonly("prepare_ms", &api::PrepareStats::prepare_ms)
      .def_readonly("backends", &api::PrepareStats::backends)
      .def_readonly("weight_bytes_held", &api::PrepareStats::weight_bytes_held)
      .def_readonly("weight_bytes_wrapped", &api::PrepareStats::weight_bytes_wrapped)
      .def_readonly("weight_bytes_uploaded", &api::PrepareStats::weight_bytes_uploaded);
}

void BindPlan(py::module_& m) {
  py::class_<api::Plan> plan(m, "Plan", "Where each node of an entry runs and why, splits, transfers, memory.");
  py::class_<api::Plan::Node>(plan, "Node")
      .def_readonly("name", &api::Plan::Node::name)
      .def_readonly("op", &api::Plan::Node::op)
      .def_readonly("backend", &api::Plan::Node::backend)
      .def_readonly("reason", &api::Plan::Node::reason)
      .def_readonly("split", &api::Plan::Node::split);
  py::class_<api::Plan::Split>(plan, "Split")
      .def_readonly("backend", &api::Plan::Split::backend)
      .def_readonly("nodes", &api::Plan::Split::nodes);
  py::class_<api::Plan::Transfer>(plan, "Transfer")
      .def_readonly("tensor", &api::Plan::Transfer::tensor)
      .def_readonly("source", &api::Plan::Transfer::from)  // `from` is a Python keyword
      .def_readonly("to", &api::Plan::Transfer::to)
      .def_readonly("split", &api::Plan::Transfer::split)
      .def_readonly("bytes", &api::Plan::Transfer::bytes);
  py::class_<api::Plan::Memory>(plan, "Memory")
      .def_readonly("backend", &api::Plan::Memory::backend)
      .def_readonly("arena_bytes", &api::Plan::Memory::arena_bytes)
      .def_readonly("arena_naive_bytes", &api::Plan::Memory::arena_naive_bytes)
      .def_readonly("input_bytes", &api::Plan::Memory::input_bytes)
      .def_readonly("state_bytes", &api::Plan::Memory::state_bytes)
      .def_readonly("constant_bytes", &api::Plan::Memory::constant_bytes);
  plan.def_readonly("entry", &api::Plan::entry)
      .def_readonly("backends", &api::Plan::backends)
      .def_readonly("nodes", &api::Plan::nodes)
      .def_readonly("splits", &api::Plan::splits)
      .def_readonly("transfers", &api::Plan::transfers)
      .def_readonly("memory", &api::Plan::memory)
      .def_readonly("transfer_bytes_per_run", &api::Plan::transfer_bytes_per_run)
      .def("to_text", &api::Plan::ToText)
      .def("to_json", &api::Plan::ToJson)
      .def("__str__", &api::Plan::ToText);

  py::class_<api::Profile> profile(m, "Profile", "Time per node and per op over the profiled runs (device clock).");
  py::class_<api::Profile::Node>(profile, "Node")
      .def_readonly("name", &api::Profile::Node::name)
      .def_readonly("op", &api::Profile::Node::op)
      .def_readonly("backend", &api::Profile::Node::backend)
      .def_readonly("count", &api::Profile::Node::count)
      .def_readonly("total_us", &api::Profile::Node::total_us)
      .def_readonly("last_us", &api::Profile::Node::last_us);
  py::class_<api::Profile::Op>(profile, "Op")
      .def_readonly("op", &api::Profile::Op::op)
      .def_readonly("backend", &api::Profile::Op::backend)
      .def_readonly("count", &api::Profile::Op::count)
      .def_readonly("total_us", &api::Profile::Op::total_us);
  profile.def_readonly("runs", &api::Profile::runs)
      .def_readonly("nodes", &api::Profile::nodes)
      .def_readonly("ops", &api::Profile::ops)
      .def("to_text", &api::Profile::ToText)
      .def("to_json", &api::Profile::ToJson)
      .def("__str__", &api::Profile::ToText);
}

void BindBackend(py::module_& m) {
  m.def("version", [] { return std::string(api::Version()); }, "The version of the kiln library.");
  m.def("backend_names", &api::BackendNames,
        "The backends compiled in, in default priority order (GPU backends first, 'cpu' last).");
  m.def("list_devices", [](const std::string& name) { return Value(Unlocked([&] { return api::ListDevices(name); })); },
        py::arg("name"), "The devices backend `name` can use here, without opening it.");
  m.def("default_cache_dir", &api::DefaultCacheDir, "The folder GPU backends keep compiled pipelines in.");

  py::class_<Backend>(m, "Backend", "An open backend (a device, its queue and pipeline cache); shared by copies.")
      .def(py::init([](const std::string& name, int threads, const std::string& device, const std::string& cache_dir,
                       const std::map<std::string, std::string>& flags) {
             api::BackendOptions o;
             o.threads = threads;
             o.device = device;
             o.cache_dir = cache_dir;
             o.flags = flags;
             return Value(Unlocked([&] { return Backend::Open(name, o); }));
           }),
           py::arg("name"), py::kw_only(), py::arg("threads") = 0, py::arg("device") = "", py::arg("cache_dir") = "",
           py::arg("flags") = std::map<std::string, std::string>{},
           "Opens backend `name` ('cpu', 'vulkan', 'opencl'); raises NotFoundError or UnavailableError.")
      .def_property_readonly("name", &Backend::name)
      .def_property_readonly("device", &Backend::device)
      .def("pipeline_stats", &Backend::pipeline_stats, "Pipeline counters since the backend was opened.")
      .def("__repr__", [](const Backend& b) { return absl::StrCat("Backend('", b.name(), "')"); });
}

void BindEntry(py::module_& m) {
  // Entries belong to their Model: Python never deletes one.
  py::class_<Entry, std::unique_ptr<Entry, py::nodelete>>(m, "Entry", "One graph of a model, prepared on the model's backends; belongs to its Model.")
      .def_property_readonly("name", &Entry::name)
      .def_property_readonly("inputs", &Entry::inputs, "the inputs the caller sets (states not included)")
      .def_property_readonly("outputs", &Entry::outputs)
      .def_property_readonly("states", &Entry::states)
      .def_property_readonly("metadata", &Entry::metadata)
      .def("set_input", &SetInput, py::arg("name"), py::arg("value"),
           "Sets input (or state) `name` from an array of its dtype and shape, copied once into its buffer.")
      .def(
          "set_inputs",
          [](Entry& e, const py::dict& values) {
            for (auto [name, value] : values) SetInput(e, py::cast<std::string>(name), value);
          },
          py::arg("values"), "set_input for each name: array of a dict.")
      .def(
          "set_input_npy",
          [](Entry& e, const std::string& name, const std::string& path) {
            Check(Unlocked([&] { return e.SetInputFromNpy(name, path); }));
          },
          py::arg("name"), py::arg("path"), "Sets input `name` from a .npy file.")
      .def(
          "input_buffer",
          [](py::object self, const std::string& name) {
            Entry& e = self.cast<Entry&>();
            const api::TensorDesc* desc = FindDesc(e.inputs(), name);
            if (!desc) {
              Raise(absl::NotFoundError(absl::StrCat("entry '", e.name(), "' has no input '", name, "' (inputs: ",
                                                     Names(e.inputs()), ")")));
            }
            absl::Span<std::byte> buffer = Value(e.InputBuffer(name));
            // A view of kiln's buffer; the entry (so the model) lives while it does.
            return py::array(NumpyDType(desc->dtype), NumpyShape(desc->dtype, desc->dims), buffer.data(), self);
          },
          py::arg("name"),
          "Zero-copy input: a writeable array over kiln's own buffer for input `name`; what is written there is "
          "the input's value for the following runs (write only while no run is in flight). UnimplementedError "
          "where the backend's input memory is not host-addressable: use set_input.")
      .def(
          "output_buffer",
          [](py::object self, const std::string& name) {
            const Entry& e = self.cast<const Entry&>();
            const api::TensorDesc* desc = FindDesc(e.outputs(), name);
            if (!desc) {
              Raise(absl::NotFoundError(absl::StrCat("entry '", e.name(), "' has no output '", name,
                                                     "' (outputs: ", Names(e.outputs()), ")")));
            }
            absl::Span<const std::byte> buffer = Value(e.OutputBuffer(name));
            py::array a(NumpyDType(desc->dtype), NumpyShape(desc->dtype, desc->dims), buffer.data(), self);
            a.attr("setflags")(py::arg("write") = false);
            return a;
          },
          py::arg("name"),
          "Zero-copy output: a read-only array over output `name` of the last run where the backend keeps it in "
          "host memory (the CPU), valid until the next run or submit; UnimplementedError otherwise: use "
          "get_output.")
      .def(
          "run", [](Entry& e) { Check(Unlocked([&] { return e.Run(); })); },
          "Runs once and waits; states update in place.")
      .def(
          "submit", [](Entry& e) { Check(Unlocked([&] { return e.Submit(); })); },
          "Starts a run; wait() finishes it.")
      .def(
          "wait", [](Entry& e) { Check(Unlocked([&] { return e.Wait(); })); },
          "Waits for the run submit() started and raises its errors.")
      .def_property_readonly("runs", &Entry::runs, "completed runs")
      .def(
          "get_output",
          [](const Entry& e, const std::string& name, py::object out) -> py::object {
            if (out.is_none()) return ToNumpy(Value(Unlocked([&] { return e.GetOutput(name); })));
            const api::TensorDesc* desc = FindDesc(e.outputs(), name);
            if (!desc) desc = FindDesc(e.states(), name);
            if (!desc) {
              Raise(absl::NotFoundError(absl::StrCat("entry '", e.name(), "' has no output '", name,
                                                     "' (outputs: ", Names(e.outputs()), ")")));
            }
            py::array a = CheckedOut(*desc, out, absl::StrCat("output '", name, "' of entry '", e.name(), "'"));
            void* dst = a.mutable_data();
            const size_t bytes = static_cast<size_t>(a.nbytes());
            Check(Unlocked([&] { return e.ReadOutput(name, dst, bytes); }));
            return out;
          },
          py::arg("name"), py::arg("out") = py::none(),
          "Output (or state) `name` of the last run: a new array, or written into `out` (an array of its dtype "
          "and shape) and `out` returned.")
      .def(
          "get_outputs",
          [](const Entry& e) {
            py::dict out;
            for (const api::TensorDesc& d : e.outputs()) {
              out[py::str(d.name)] = ToNumpy(Value(Unlocked([&] { return e.GetOutput(d.name); })));
            }
            return out;
          },
          "Every output of the last run, name: array.")
      .def(
          "plan", [](const Entry& e) { return Value(e.plan()); }, "Placement, splits, transfers and memory.")
      .def(
          "set_profiling", [](Entry& e, bool on) { Check(e.SetProfiling(on)); }, py::arg("on"),
          "Times every node of the following runs.")
      .def(
          "profile", [](const Entry& e) { return Value(e.profile()); }, "Node and op times of the profiled runs.")
      .def("reset_profile", &Entry::ResetProfile)
      .def(
          "set_tracing", [](Entry& e, bool on) { Check(e.SetTracing(on)); }, py::arg("on"),
          "Records the following runs for trace_json().")
      .def(
          "trace_json", [](const Entry& e) { return Value(e.TraceJson()); },
          "A Chrome trace (open in Perfetto) of the pipeline compiles and the traced runs.")
      .def("__repr__", [](const Entry& e) { return absl::StrCat("Entry('", e.name(), "')"); });
}

std::vector<Backend> BackendList(py::handle backends) {
  if (py::isinstance<Backend>(backends)) return {backends.cast<Backend>()};
  return backends.cast<std::vector<Backend>>();
}


// A GraphBuilder that Model.from_builder / add_entry consume: later calls on
// the Python object then raise instead of touching a moved-from builder.
struct PyBuilder {
  std::optional<api::GraphBuilder> builder;

  api::GraphBuilder& get() {
    if (!builder) {
      Raise(absl::FailedPreconditionError("this GraphBuilder was used up by Model.from_builder or add_entry"));
    }
    return *builder;
  }
  api::GraphBuilder take() {
    api::GraphBuilder b = std::move(get());
    builder.reset();
    return b;
  }
};

api::DType DTypeOf(const std::string& name) { return Value(api::ParseDType(name)); }

void BindBuilder(py::module_& m) {
  py::class_<api::Tensor>(m, "Tensor", "A tensor of the graph being built (GraphBuilder).")
      .def_readonly("id", &api::Tensor::id)
      .def_property_readonly("valid", &api::Tensor::valid)
      .def("__repr__", [](const api::Tensor& t) { return absl::StrCat("Tensor(", t.id, ")"); });

  py::class_<PyBuilder>(m, "GraphBuilder",
                        "Builds a graph node by node, each validated as it is added (docs/OPS.md has the ops). "
                        "The first error sticks: status() raises it, and so does Model.from_builder.")
      .def(py::init([](std::string name) { return PyBuilder{api::GraphBuilder(std::move(name))}; }),
           py::arg("name"))
      .def(
          "input",
          [](PyBuilder& b, std::string name, const std::string& dtype, std::vector<int64_t> dims) {
            return b.get().Input(std::move(name), DTypeOf(dtype), std::move(dims));
          },
          py::arg("name"), py::arg("dtype"), py::arg("shape"), "A graph input of a dtype name and shape.")
      .def(
          "constant",
          [](PyBuilder& b, std::string name, const std::string& dtype, py::handle value) {
            // The value's shape is the tensor's (q8_0: see arrays.h); its
            // bytes are copied.
            py::array a = py::array::ensure(value);
            if (!a) throw py::error_already_set();
            const api::DType dt = DTypeOf(dtype);
            api::TensorDesc desc{name, dt, std::vector<int64_t>(a.shape(), a.shape() + a.ndim()), 0};
            if (dt == api::DType::kQ8_0 && !desc.dims.empty()) desc.dims.back() = desc.dims.back() / 34 * 32;
            py::array c = CheckedArray(desc, value, absl::StrCat("constant '", name, "'"));
            return b.get().Constant(std::move(name), dt, desc.dims, c.data(), static_cast<size_t>(c.nbytes()));
          },
          py::arg("name"), py::arg("dtype"), py::arg("value"), "A constant holding a copy of `value`.")
      .def(
          "view",
          [](PyBuilder& b, api::Tensor base, std::vector<int64_t> dims, std::vector<int64_t> strides, int64_t offset,
             std::string name) { return b.get().View(base, std::move(dims), std::move(strides), offset, std::move(name)); },
          py::arg("base"), py::arg("shape"), py::arg("strides"), py::arg("offset") = 0, py::arg("name") = "",
          "A strided window of `base` (byte strides and offset).")
      .def(
          "op",
          [](PyBuilder& b, std::string_view op, std::vector<api::Tensor> inputs, api::Attrs attrs, std::string name) {
            return b.get().Op(op, std::move(inputs), std::move(attrs), std::move(name));
          },
          py::arg("op"), py::arg("inputs"), py::arg("attrs") = api::Attrs{}, py::arg("name") = "",
          "Adds a node; returns its outputs (none after an error).")
      .def(
          "op1",
          [](PyBuilder& b, std::string_view op, std::vector<api::Tensor> inputs, api::Attrs attrs, std::string name) {
            return b.get().Op1(op, std::move(inputs), std::move(attrs), std::move(name));
          },
          py::arg("op"), py::arg("inputs"), py::arg("attrs") = api::Attrs{}, py::arg("name") = "",
          "Adds a single-output node and returns the output.")
      .def(
          "output", [](PyBuilder& b, api::Tensor t) { b.get().Output(t); }, py::arg("tensor"))
      .def(
          "state", [](PyBuilder& b, api::Tensor input, api::Tensor next) { b.get().State(input, next); },
          py::arg("input"), py::arg("next"), "Declares output `next` the next value of input `input`.")
      .def(
          "set_metadata", [](PyBuilder& b, std::string k, std::string v) { b.get().SetMetadata(std::move(k), std::move(v)); },
          py::arg("key"), py::arg("value"))
      .def(
          "rename", [](PyBuilder& b, api::Tensor t, std::string name) { b.get().Rename(t, std::move(name)); },
          py::arg("tensor"), py::arg("name"))
      .def(
          "describe", [](PyBuilder& b, api::Tensor t) { return b.get().Describe(t); }, py::arg("tensor"))
      .def(
          "status", [](PyBuilder& b) { Check(b.get().status()); }, "Raises the builder's first error, if any.");
}

void BindModel(py::module_& m) {
  py::class_<Model>(m, "Model",
                    "Named entries (graphs) over one set of weights and states, which stay on the devices.")
      .def(py::init<>(), "A model with no entries: add_entry_file / add_entry_bytes, then prepare.")
      .def_static(
          "load",
          [](const std::string& path) {
            return std::make_unique<Model>(Value(Unlocked([&] { return Model::Load(path); })));
          },
          py::arg("path"),
          "Loads a model file: entry 'prefill', plus an entry per 'model.entry.<name>' metadata key.")
      .def_static(
          "from_bytes",
          [](const py::bytes& bytes, const std::string& folder, const std::string& entry) {
            std::string data = bytes;
            return std::make_unique<Model>(Value(Unlocked([&] { return Model::FromBytes(data, folder, entry); })));
          },
          py::arg("data"), py::arg("folder") = "", py::arg("entry") = std::string(api::kFirstEntry),
          "One entry from a serialized graph; external weights resolve inside `folder`.")
      .def_static(
          "from_builder",
          [](PyBuilder& b, const std::string& entry) {
            return std::make_unique<Model>(Value(Model::FromBuilder(b.take(), entry)));
          },
          py::arg("builder"), py::arg("entry") = std::string(api::kFirstEntry),
          "One entry from a GraphBuilder (which it uses up).")
      .def(
          "add_entry",
          [](Model& model, std::string entry, PyBuilder& b) { Check(model.AddEntry(std::move(entry), b.take())); },
          py::arg("entry"), py::arg("builder"), "Adds an entry from a GraphBuilder (which it uses up).")
      .def(
          "add_entry_file",
          [](Model& model, std::string entry, const std::string& path) {
            Check(Unlocked([&] { return model.AddEntryFile(std::move(entry), path); }));
          },
          py::arg("entry"), py::arg("path"), "Adds entry `entry` from a graph file.")
      .def(
          "add_entry_bytes",
          [](Model& model, std::string entry, const py::bytes& bytes, std::string folder) {
            std::string data = bytes;
            Check(Unlocked([&] { return model.AddEntryBytes(std::move(entry), data, std::move(folder)); }));
          },
          py::arg("entry"), py::arg("data"), py::arg("folder") = "", "Adds an entry from a serialized graph.")
      .def(
          "prepare",
          [](Model& model, py::handle backends, bool strict, bool allow_profiling, bool profile, bool merge_islands,
             bool wrap_constants) {
            api::PrepareOptions o;
            o.strict = strict;
            o.allow_profiling = allow_profiling;
            o.profile = profile;
            o.merge_islands = merge_islands;
            o.wrap_constants = wrap_constants;
            std::vector<Backend> list = BackendList(backends);
            Check(Unlocked([&] { return model.Prepare(std::move(list), o); }));
          },
          py::arg("backends"), py::kw_only(), py::arg("strict") = false, py::arg("allow_profiling") = true,
          py::arg("profile") = false, py::arg("merge_islands") = true, py::arg("wrap_constants") = true,
          "Places, plans memory, binds weights and states and compiles pipelines on `backends` (a Backend or a "
          "list, priority order).")
      .def_property_readonly("prepared", &Model::prepared)
      .def_property_readonly("entries", &Model::entries, "entry names, in the order they were added")
      .def(
          "entry", [](const Model& model, const std::string& name) { return Value(model.entry(name)); },
          py::arg("name") = "", py::return_value_policy::reference_internal,
          "The entry of that name ('' = the first); it keeps the model alive.")
      .def(
          "__getitem__", [](const Model& model, const std::string& name) { return Value(model.entry(name)); },
          py::return_value_policy::reference_internal)
      .def_property_readonly("states", &Model::states)
      .def(
          "read_state",
          [](const Model& model, const std::string& name, py::object out) -> py::object {
            if (out.is_none()) return ToNumpy(Value(Unlocked([&] { return model.ReadState(name); })));
            const std::vector<api::TensorDesc> states = model.states();
            const api::TensorDesc* desc = FindDesc(states, name);
            if (!desc) {
              Raise(absl::NotFoundError(
                  absl::StrCat("the model has no state '", name, "' (states: ", Names(states), ")")));
            }
            py::array a = CheckedOut(*desc, out, absl::StrCat("state '", name, "'"));
            void* dst = a.mutable_data();
            const size_t bytes = static_cast<size_t>(a.nbytes());
            Check(Unlocked([&] { return model.ReadState(name, dst, bytes); }));
            return out;
          },
          py::arg("name"), py::arg("out") = py::none(),
          "A state's value (copied off the device): a new array, or written into `out` and `out` returned.")
      .def("write_state", &WriteState, py::arg("name"), py::arg("value"))
      .def(
          "zero_state", [](Model& model, const std::string& name) { Check(Unlocked([&] { return model.ZeroState(name); })); },
          py::arg("name"))
      .def("zero_states", [](Model& model) { Check(Unlocked([&] { return model.ZeroStates(); })); })
      .def_property_readonly("backends", &Model::backends)
      .def("prepare_stats", [](const Model& model) { return Value(model.prepare_stats()); });
}

}  // namespace
}  // namespace kiln::python

PYBIND11_MODULE(_kiln, m) {
  m.doc() = "kiln: a graph-executor runtime with CPU, Vulkan and OpenCL backends (see kiln/__init__.py)";
  kiln::python::BindInfo(m);
  kiln::python::BindPlan(m);
  kiln::python::BindBackend(m);
  kiln::python::BindBuilder(m);
  kiln::python::BindEntry(m);
  kiln::python::BindModel(m);
}
