#include "conformance/runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "conformance/inputs.h"
#include "graph/builder.h"
#include "graph/tensor_view.h"
#include "ops/compare.h"
#include "ops/registry.h"

namespace kiln::conformance {
namespace {

// Unwritten output bytes read as NaN in every float type (and -1 in i32).
constexpr std::byte kOutputSentinel{0xff};

std::byte GuardByte(size_t i) { return static_cast<std::byte>((i * 131 + 17) & 0xff); }

std::string RoleName(const OpSchema& schema, size_t i) {
  const size_t spec = std::min(i, schema.inputs.size() - 1);
  std::string name = schema.inputs[spec].name;
  if (schema.variadic && i + 1 >= schema.inputs.size()) absl::StrAppend(&name, i);
  return name;
}

// The base tensor of a view input, and the view into it (see InputSpec).
Tensor AddViewInput(GraphBuilder& b, const std::string& name, const InputSpec& in) {
  const int rank = static_cast<int>(in.dims.size());
  std::vector<int> perm = in.perm;
  if (perm.empty()) {
    for (int i = 0; i < rank; ++i) perm.push_back(i);
  }
  std::vector<int64_t> base_dims(rank);
  for (int k = 0; k < rank; ++k) base_dims[k] = in.dims[perm[k]];
  const bool q8 = in.dtype == DType::kQ8_0;
  int64_t offset = 0;
  const std::vector<int64_t> packed = ContiguousStrides(in.dtype, base_dims);
  if (in.padded) {
    for (int k = 0; k + 1 < rank; ++k) base_dims[k] += 1;
    base_dims[rank - 1] += q8 ? kQ8BlockSize : 3;
  }
  const std::vector<int64_t> base_strides = ContiguousStrides(in.dtype, base_dims);
  if (in.padded) {
    // Start at index 1 of every outer dim and 2 elements (a block) into the row.
    for (int k = 0; k + 1 < rank; ++k) offset += base_strides[k];
    offset += q8 ? kQ8BlockBytes : 2 * ElementSize(in.dtype);
  }
  std::vector<int64_t> strides(rank);
  for (int k = 0; k < rank; ++k) strides[perm[k]] = base_strides[k];
  Tensor base = b.Input(absl::StrCat(name, "_base"), in.dtype, base_dims);
  return b.View(base, in.dims, strides, offset, name);
}

absl::Status CheckCase(const Case& c, const OpSchema& schema) {
  for (const InputSpec& in : c.inputs) {
    if (in.perm.empty()) continue;
    const int rank = static_cast<int>(in.dims.size());
    std::vector<int> sorted = in.perm;
    std::sort(sorted.begin(), sorted.end());
    bool ok = static_cast<int>(in.perm.size()) == rank && in.perm.back() == rank - 1;
    for (int i = 0; ok && i < rank; ++i) ok = sorted[i] == i;
    if (!ok) return absl::InvalidArgumentError("an input's perm must permute the outer dims only");
  }
  for (auto [i, o] : c.inplace) {
    if (std::find(schema.inplace.begin(), schema.inplace.end(), std::make_pair(i, o)) == schema.inplace.end()) {
      return absl::InvalidArgumentError(absl::StrCat("op ", c.op, " does not allow input ", i, " -> output ", o,
                                                     " in place"));
    }
    if (i >= static_cast<int>(c.inputs.size()) || !c.inputs[i].present || c.inputs[i].is_view()) {
      return absl::InvalidArgumentError("an in-place input must be present and not a view");
    }
  }
  return absl::OkStatus();
}

DType ToleranceDType(const Graph& g, const Node& node) {
  for (const std::vector<int>* ids : {&node.inputs, &node.outputs}) {
    for (int id : *ids) {
      if (id < 0) continue;
      const DType t = g.tensors[id].dtype;
      if (t == DType::kF16 || t == DType::kBF16 || t == DType::kQ8_0) return t;
    }
  }
  return DType::kF32;
}

// "" if `got` equals `want` on [from, to); else where it first differs.
std::string FirstChange(const HostBytes& got, const HostBytes& want, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (got[i] != want[i]) {
      size_t n = 0;
      for (size_t j = i; j < to; ++j) n += got[j] != want[j];
      return absl::StrCat(n, " byte(s) changed, the first at +", i - from);
    }
  }
  return "";
}

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kPassed: return "passed";
    case Verdict::kFailed: return "failed";
    case Verdict::kDeclined: return "declined";
  }
  return "?";
}

namespace {

// The graph of a case, with the tensor id of every case input (-1: absent)
// and the (input, output) tensor pairs that share memory.
struct CaseGraph {
  Graph graph;
  std::vector<int> inputs;
  std::vector<std::pair<int, int>> aliases;
};

absl::StatusOr<CaseGraph> BuildGraph(const Case& c) {
  const OpSchema* schema = nullptr;
  if (c.is_chain()) {
    if (c.op != "chain") return absl::InvalidArgumentError("a chained case's op must be \"chain\"");
  } else {
    schema = FindOp(c.op);
    if (!schema) return absl::NotFoundError(absl::StrCat("unknown op '", c.op, "'"));
    if (auto st = CheckCase(c, *schema); !st.ok()) return st;
  }
  GraphBuilder b(absl::StrCat("conformance.", c.op));
  CaseGraph out;
  std::vector<Tensor> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const InputSpec& in = c.inputs[i];
    const std::string name = schema ? RoleName(*schema, i) : absl::StrCat("in", i);
    if (!in.present) {
      ins.push_back(Tensor{});
    } else if (in.is_view()) {
      ins.push_back(AddViewInput(b, name, in));
    } else {
      ins.push_back(b.Input(name, in.dtype, in.dims));
    }
    out.inputs.push_back(ins.back().id);
  }
  if (!schema) {
    // A chain: nodes in order; outputs no later node reads, and in-place
    // ones, are the graph's outputs.
    std::vector<std::vector<Tensor>> outs;
    std::vector<std::vector<bool>> read;
    std::vector<std::vector<bool>> inplace_out;
    for (size_t k = 0; k < c.chain.size(); ++k) {
      const ChainNode& n = c.chain[k];
      const OpSchema* s = FindOp(n.op);
      if (!s) return absl::NotFoundError(absl::StrCat("chain node ", k, ": unknown op '", n.op, "'"));
      std::vector<Tensor> node_ins;
      for (size_t j = 0; j < n.inputs.size(); ++j) {
        const ChainRef& r = n.inputs[j];
        Tensor t;
        if (r.node < 0) {
          if (r.index >= static_cast<int>(ins.size())) {
            return absl::InvalidArgumentError(absl::StrCat("chain node ", k, " reads case input ", r.index,
                                                           " of ", ins.size()));
          }
          if (r.index >= 0) t = ins[r.index];
        } else {
          if (r.node >= static_cast<int>(k) || r.index >= static_cast<int>(outs[r.node].size())) {
            return absl::InvalidArgumentError(absl::StrCat("chain node ", k, " reads output ", r.index,
                                                           " of node ", r.node, ", not an earlier node's"));
          }
          t = outs[r.node][r.index];
          read[r.node][r.index] = true;
        }
        if (t.valid() && !r.view_dims.empty()) {
          const TensorInfo& base = b.info(t);
          const int64_t es = ElementSize(base.dtype);
          std::vector<int64_t> strides;
          if (r.view_strides.empty()) {
            strides = ContiguousStrides(base.dtype, r.view_dims);
          } else {
            for (int64_t st : r.view_strides) strides.push_back(st * es);
          }
          t = b.View(t, r.view_dims, strides, r.view_offset * es, absl::StrCat("view", k, "_", j));
        }
        node_ins.push_back(t);
      }
      for (auto [i, o] : n.inplace) {
        if (std::find(s->inplace.begin(), s->inplace.end(), std::make_pair(i, o)) == s->inplace.end() ||
            i >= static_cast<int>(n.inputs.size()) || n.inputs[i].node >= 0 || n.inputs[i].index < 0 ||
            !n.inputs[i].view_dims.empty() || c.inputs[n.inputs[i].index].is_view()) {
          return absl::InvalidArgumentError(absl::StrCat("chain node ", k, " (", n.op, "): input ", i,
                                                         " -> output ", o,
                                                         " in place needs an allowed pair and a case input"));
        }
      }
      outs.push_back(b.Op(n.op, node_ins, n.attrs, absl::StrCat(n.op, "_", k)));
      if (!b.status().ok()) return b.status();
      read.emplace_back(outs.back().size(), false);
      inplace_out.emplace_back(outs.back().size(), false);
      for (auto [i, o] : n.inplace) {
        inplace_out[k][o] = true;
        out.aliases.push_back({node_ins[i].id, outs[k][o].id});
      }
    }
    for (size_t k = 0; k < outs.size(); ++k) {
      for (size_t o = 0; o < outs[k].size(); ++o) {
        if (!read[k][o] || inplace_out[k][o]) b.Output(outs[k][o]);
      }
    }
  } else {
    // A distinctive node name: an expected error must name it.
    const std::vector<Tensor> outs = b.Op(c.op, ins, c.attrs, absl::StrCat(c.op, "_under_test"));
    for (Tensor t : outs) b.Output(t);
    for (auto [i, o] : c.inplace) {
      if (o < static_cast<int>(outs.size())) out.aliases.push_back({ins[i].id, outs[o].id});
    }
  }
  auto graph = b.Build();
  if (!graph.ok()) return graph.status();
  out.graph = *std::move(graph);
  return out;
}

int64_t RoundUp(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

// Offsets (from 0) of the arena tensors, placed like a memory plan: in node
// order, each node's arena outputs at the lowest `align`-aligned offset that
// no live tensor uses; a tensor dies after the last node that reads it (or a
// view of it), and its bytes go to later nodes' outputs.
std::vector<int64_t> PlanArena(const Graph& g, const std::vector<bool>& in_arena, int64_t align,
                               int64_t* total) {
  const int n = static_cast<int>(g.tensors.size());
  std::vector<int> last_use(n, -1);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    for (int id : g.nodes[ni].inputs) {
      if (id >= 0) last_use[g.StorageOf(id)] = static_cast<int>(ni);
    }
  }
  std::vector<int64_t> offset(n, -1);
  std::vector<int> live;
  *total = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    for (int id : g.nodes[ni].outputs) {
      if (!in_arena[id]) continue;
      const int64_t size = ContiguousBytes(g.tensors[id].dtype, g.tensors[id].dims);
      int64_t at = 0;
      for (bool moved = true; moved;) {
        moved = false;
        for (int other : live) {
          const int64_t o = offset[other];
          const int64_t end = o + ContiguousBytes(g.tensors[other].dtype, g.tensors[other].dims);
          if (at < end && o < at + size) {
            at = RoundUp(end, align);
            moved = true;
          }
        }
      }
      offset[id] = at;
      live.push_back(id);
      *total = std::max(*total, at + size);
    }
    std::erase_if(live, [&](int id) { return last_use[id] <= static_cast<int>(ni); });
  }
  return offset;
}

// Bytes of the front guard on `backend`: kGuardFront, rounded up to a
// multiple of the buffer alignment.
size_t FrontGuard(const Backend& backend) {
  const int64_t align = std::max<int64_t>(1, static_cast<int64_t>(backend.limits().buffer_alignment));
  return static_cast<size_t>(RoundUp(std::max<int64_t>(kGuardFront, align), align));
}

double Ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

size_t GuardFront(const Backend& backend) { return FrontGuard(backend); }

absl::StatusOr<Graph> BuildCaseGraph(const Case& c) {
  auto cg = BuildGraph(c);
  if (!cg.ok()) return cg.status();
  return std::move(cg->graph);
}

absl::StatusOr<Instance> Instantiate(const Case& c) {
  auto cg = BuildGraph(c);
  if (!cg.ok()) return cg.status();
  Instance inst;
  inst.graph = std::move(cg->graph);
  inst.inputs = std::move(cg->inputs);
  inst.aliases = std::move(cg->aliases);
  const Graph& g = inst.graph;
  inst.host.resize(g.tensors.size());
  for (int id : g.inputs) {
    // Padding around views reads as NaN (i32: -1).
    inst.host[id].assign(ContiguousBytes(g.tensors[id].dtype, g.tensors[id].dims), std::byte{0xff});
  }
  std::mt19937_64 rng(c.seed);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].present) continue;
    const int id = inst.inputs[i];
    const TensorInfo& t = g.tensors[id];
    std::byte* base = inst.host[g.StorageOf(id)].data() + t.offset;
    FillInput(TensorView::Of(t, base), c.inputs[i].dist, rng);
  }
  return inst;
}

absl::StatusOr<std::vector<HostBytes>> RunReference(const Instance& inst) {
  const Graph& g = inst.graph;
  // Every node output in its own contiguous host buffer (in-place outputs
  // too: the references are functional), views resolved through their base.
  std::vector<HostBytes> values(g.tensors.size());
  auto view = [&](int id) {
    const TensorInfo& t = g.tensors[id];
    const int s = g.StorageOf(id);
    auto* base = const_cast<std::byte*>(g.tensors[s].producer < 0 ? inst.host[s].data() : values[s].data());
    return TensorView::Of(t, base + t.offset);
  };
  for (const Node& node : g.nodes) {
    std::vector<TensorView> in, out;
    for (int id : node.inputs) in.push_back(id < 0 ? TensorView{} : view(id));
    for (int id : node.outputs) {
      const TensorInfo& t = g.tensors[id];
      values[id].assign(ContiguousBytes(t.dtype, t.dims), std::byte{0});
      out.push_back(TensorView::Of(t, values[id].data()));
    }
    if (auto st = FindOp(node.op)->reference(node, in, out); !st.ok()) {
      if (g.nodes.size() == 1) return st;
      return absl::Status(st.code(), absl::StrCat("node '", node.name, "': ", st.message()));
    }
  }
  std::vector<HostBytes> result;
  for (int id : g.outputs) result.push_back(std::move(values[id]));
  return result;
}

CaseResult RunOnBackend(Backend& backend, const Case& c, const Instance& inst,
                        const absl::StatusOr<std::vector<HostBytes>>& reference) {
  CaseResult r;
  const Graph& g = inst.graph;
  for (const Node& node : g.nodes) {
    const Support support = backend.supports(g, node);
    if (!support.ok) {
      r.verdict = Verdict::kDeclined;
      r.reason = support.reason.empty() ? "(declined without a reason)" : support.reason;
      if (g.nodes.size() > 1) r.reason = absl::StrCat(node.op, ": ", r.reason);
      return r;
    }
  }
  auto fail = [&r](std::string error) {
    r.verdict = Verdict::kFailed;
    r.error = std::move(error);
    return r;
  };
  if (reference.ok() == c.expect_error) {
    return fail(reference.ok() ? "invalid case: the reference succeeded on an expect-error case"
                               : absl::StrCat("invalid case: the reference failed: ", reference.status().message()));
  }
  if (reference.ok() && reference->size() != g.outputs.size()) {
    return fail("invalid case: the reference has a different number of outputs");
  }

  // One buffer per graph input and per graph output not run in place, each
  // laid out as [front guard][tensor bytes][back guard]; the other node
  // outputs (a chain's intermediates) in one arena buffer, laid out the same
  // way around the planned bytes.
  const size_t front = FrontGuard(backend);
  const int n = static_cast<int>(g.tensors.size());
  std::vector<int> aliased_to(n, -1);  // output id -> the input id it shares memory with
  std::vector<bool> written_in_place(n, false);
  for (auto [in, out] : inst.aliases) {
    aliased_to[out] = in;
    written_in_place[in] = true;
  }
  std::vector<bool> is_output(n, false), in_arena(n, false);
  for (int id : g.outputs) is_output[id] = true;
  for (int id = 0; id < n; ++id) {
    const TensorInfo& t = g.tensors[id];
    in_arena[id] = !t.is_view() && t.producer >= 0 && !is_output[id] && aliased_to[id] < 0;
  }
  int64_t arena_bytes = 0;
  const std::vector<int64_t> arena_offset =
      PlanArena(g, in_arena, std::max<int64_t>(1, static_cast<int64_t>(backend.limits().buffer_alignment)),
                &arena_bytes);
  const bool has_arena = std::find(in_arena.begin(), in_arena.end(), true) != in_arena.end();

  // Buffers: [0, n) one per tensor, n the arena.
  struct Buf {
    std::unique_ptr<Buffer> buffer;
    HostBytes image;  // what it holds before each run
    bool input = false;
    std::string what;
  };
  std::vector<Buf> bufs(n + 1);
  Bindings bindings;
  bindings.tensors.resize(n);
  auto make = [&](int slot, size_t bytes, BufferUsage usage, std::string label, const HostBytes* content) {
    Buf& b = bufs[slot];
    b.image.resize(front + bytes + kGuardBack);
    for (size_t i = 0; i < b.image.size(); ++i) b.image[i] = GuardByte(i);
    if (content) {
      std::memcpy(b.image.data() + front, content->data(), bytes);
    } else {
      std::memset(b.image.data() + front, static_cast<int>(kOutputSentinel), bytes);
    }
    b.input = content != nullptr;
    b.what = label;
    auto buffer = backend.Allocate(b.image.size(), usage, absl::StrCat("conformance ", label));
    if (!buffer.ok()) return absl::Status(buffer.status().code(), absl::StrCat("Allocate(", b.image.size(), ", ", label,
                                                                               "): ", buffer.status().message()));
    b.buffer = *std::move(buffer);
    return absl::OkStatus();
  };
  for (int id = 0; id < n; ++id) {
    const TensorInfo& t = g.tensors[id];
    if (t.is_view() || aliased_to[id] >= 0 || in_arena[id]) continue;
    const bool is_input = t.producer < 0;
    const size_t bytes = static_cast<size_t>(ContiguousBytes(t.dtype, t.dims));
    const BufferUsage usage =
        is_input ? (written_in_place[id] ? BufferUsage::kState : BufferUsage::kInput) : BufferUsage::kOutput;
    if (auto st = make(id, bytes, usage, absl::StrCat(is_input ? "input '" : "output '", t.name, "'"),
                       is_input ? &inst.host[id] : nullptr);
        !st.ok()) {
      return fail(st.ToString());
    }
    bindings.tensors[id] = {bufs[id].buffer.get(), front};
  }
  if (has_arena) {
    if (auto st = make(n, static_cast<size_t>(arena_bytes), BufferUsage::kArena, "arena", nullptr); !st.ok()) {
      return fail(st.ToString());
    }
    for (int id = 0; id < n; ++id) {
      if (in_arena[id]) bindings.tensors[id] = {bufs[n].buffer.get(), front + static_cast<size_t>(arena_offset[id])};
    }
  }
  for (int id = 0; id < n; ++id) {
    if (aliased_to[id] >= 0) bindings.tensors[id] = bindings.tensors[aliased_to[id]];
  }
  for (int id = 0; id < n; ++id) {
    const TensorInfo& t = g.tensors[id];
    if (t.is_view()) {
      bindings.tensors[id] = bindings.tensors[g.StorageOf(id)];
      bindings.tensors[id].offset += static_cast<size_t>(t.offset);
    }
  }

  // Before each run: inputs (states included) uploaded again, outputs and the
  // arena filled with the sentinel (so a run that writes nothing shows),
  // guards rewritten; then Flush and Wait.
  auto load = [&]() -> absl::Status {
    for (Buf& b : bufs) {
      if (!b.buffer) continue;
      const size_t end = b.image.size() - kGuardBack;
      if (b.input) {
        if (auto st = backend.Upload(*b.buffer, 0, b.image.data(), b.image.size()); !st.ok()) {
          return absl::Status(st.code(), absl::StrCat("Upload ", b.what, ": ", st.message()));
        }
        continue;
      }
      absl::Status st = backend.Upload(*b.buffer, 0, b.image.data(), front);
      if (st.ok()) st = backend.Fill(*b.buffer, front, end - front, static_cast<uint8_t>(kOutputSentinel));
      if (st.ok()) st = backend.Upload(*b.buffer, end, b.image.data() + end, kGuardBack);
      if (!st.ok()) return absl::Status(st.code(), absl::StrCat("Upload/Fill ", b.what, ": ", st.message()));
    }
    auto point = backend.Flush();
    if (!point.ok()) return absl::Status(point.status().code(), absl::StrCat("Flush: ", point.status().message()));
    if (auto st = backend.Wait(*point); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("Wait after the uploads: ", st.message()));
    }
    return absl::OkStatus();
  };

  if (auto st = load(); !st.ok()) return fail(st.ToString());
  const Split split{&g, [&] {
                      std::vector<int> v(g.nodes.size());
                      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int>(i);
                      return v;
                    }()};
  auto start = std::chrono::steady_clock::now();
  auto prepared = backend.Prepare(split, bindings, PrepareOptions{.timings = true});
  r.compile_ms = Ms(start);
  const Node& first = g.nodes[0];
  if (!prepared.ok()) {
    if (c.expect_error && absl::StrContains(prepared.status().message(), first.name)) {
      // An error found before running is as good as one found running.
    } else {
      return fail(absl::StrCat("Prepare: ", prepared.status().ToString()));
    }
  }

  // Two runs of the prepared split: the first with timings, the second
  // without (a recorded command buffer replayed, states updated again).
  constexpr int kRuns = 2;
  for (int run = 0; run < kRuns && prepared.ok(); ++run) {
    const std::string tag = run == 0 ? "" : absl::StrCat("run ", run + 1, ": ");
    if (run > 0) {
      if (auto st = load(); !st.ok()) return fail(absl::StrCat(tag, st.ToString()));
    }
    const bool timed = run == 0;
    start = std::chrono::steady_clock::now();
    const char* step = "Execute";
    auto point = backend.Execute(**prepared, ExecuteOptions{.timings = timed});
    absl::Status status = point.status();
    if (status.ok()) {
      step = "Wait";
      status = backend.Wait(*point);
    }
    r.run_ms = Ms(start);
    if (c.expect_error) {
      if (status.ok()) {
        return fail(absl::StrCat(tag, "expected a run-time error (an index out of range), the backend reported success"));
      }
      if (!absl::StrContains(status.message(), first.name)) {
        return fail(absl::StrCat(tag, "the error does not name the node '", first.name, "': ", status.ToString()));
      }
    } else if (!status.ok()) {
      return fail(absl::StrCat(tag, step, ": ", status.ToString()));
    } else if (timed) {
      std::vector<NodeTiming> timings;
      if (auto st = backend.ReadTimings(**prepared, &timings); !st.ok()) {
        return fail(absl::StrCat(tag, "ReadTimings: ", st.ToString()));
      }
      if (timings.size() != g.nodes.size()) {
        return fail(absl::StrCat(tag, "ReadTimings gave ", timings.size(), " entries for a split of ",
                                 g.nodes.size(), " node(s) (timings were asked for)"));
      }
      std::vector<bool> seen(g.nodes.size(), false);
      for (const NodeTiming& t : timings) {
        if (t.node < 0 || t.node >= static_cast<int>(g.nodes.size()) || seen[t.node]) {
          return fail(absl::StrCat(tag, "ReadTimings: node ", t.node, " is not a node of the split, or repeated"));
        }
        seen[t.node] = true;
        if (!(t.duration_us >= 0) || !std::isfinite(t.duration_us) || !(t.start_us >= 0) ||
            !std::isfinite(t.start_us)) {
          return fail(absl::StrCat(tag, "ReadTimings: node ", t.node, " has start ", t.start_us, " us, duration ",
                                   t.duration_us, " us"));
        }
      }
    }

    // Guards, inputs, then outputs (the Wait above covers every write).
    std::vector<HostBytes> got(n + 1);
    for (int slot = 0; slot <= n; ++slot) {
      Buf& b = bufs[slot];
      if (!b.buffer) continue;
      got[slot].resize(b.image.size());
      if (auto st = backend.Download(*b.buffer, 0, got[slot].data(), got[slot].size()); !st.ok()) {
        return fail(absl::StrCat(tag, "Download ", b.what, ": ", st.ToString()));
      }
      const size_t end = b.image.size() - kGuardBack;
      std::string change = FirstChange(got[slot], b.image, 0, front);
      if (!change.empty()) return fail(absl::StrCat(tag, "wrote before the start of ", b.what, " (guard): ", change));
      change = FirstChange(got[slot], b.image, end, got[slot].size());
      if (!change.empty()) return fail(absl::StrCat(tag, "wrote past the end of ", b.what, " (guard): ", change));
      if (b.input && !(slot < n && written_in_place[slot])) {
        change = FirstChange(got[slot], b.image, front, end);
        if (!change.empty()) return fail(absl::StrCat(tag, "modified ", b.what, ": ", change));
      }
    }
    if (c.expect_error) continue;
    if (g.nodes.size() == 1) {
      r.tolerance = Tolerance(first.op, ToleranceDType(g, first));
    } else {
      // Errors add up along a chain: twice the loosest node's tolerance.
      double loosest = 0;
      for (const Node& node : g.nodes) loosest = std::max(loosest, Tolerance(node.op, ToleranceDType(g, node)));
      r.tolerance = 2 * loosest;
    }
    double worst = r.nmse < 0 ? 0 : r.nmse;
    for (size_t o = 0; o < g.outputs.size(); ++o) {
      const int id = g.outputs[o];
      const TensorInfo& t = g.tensors[id];
      const int storage = aliased_to[id] >= 0 ? aliased_to[id] : id;
      const TensorView actual = TensorView::Of(t, got[storage].data() + front);
      const TensorView want = TensorView::Of(t, const_cast<std::byte*>((*reference)[o].data()));
      const Comparison cmp = Compare(actual, want, r.tolerance);
      if (cmp.ok || cmp.nmse > 0) worst = std::max(worst, cmp.nmse);
      if (!cmp.ok) {
        r.nmse = worst;
        return fail(absl::StrCat(tag, "output '", t.name, "': ", cmp.error));
      }
    }
    r.nmse = worst;
  }
  r.verdict = Verdict::kPassed;
  return r;
}

CaseResult RunCase(Backend& backend, const Case& c) {
  auto inst = Instantiate(c);
  if (!inst.ok()) {
    CaseResult r;
    r.error = absl::StrCat("invalid case: ", inst.status().ToString());
    return r;
  }
  return RunOnBackend(backend, c, *inst, RunReference(*inst));
}

std::vector<std::vector<CaseResult>> RunSuite(const std::vector<Case>& cases,
                                              const std::vector<Backend*>& backends,
                                              const SuiteOptions& options) {
  std::vector<std::vector<CaseResult>> results(cases.size(), std::vector<CaseResult>(backends.size()));
  std::atomic<size_t> next{0};
  std::mutex backend_mu;   // backends see one case at a time
  std::mutex progress_mu;
  Progress progress;
  progress.total = cases.size();
  auto work = [&] {
    for (size_t i = next++; i < cases.size(); i = next++) {
      const Case& c = cases[i];
      std::vector<CaseResult>& out = results[i];
      auto inst = Instantiate(c);
      if (!inst.ok()) {
        for (CaseResult& r : out) r.error = absl::StrCat("invalid case: ", inst.status().ToString());
      } else {
        bool claimed = false;
        {
          std::lock_guard<std::mutex> lock(backend_mu);
          for (Backend* b : backends) {
            bool all = true;
            for (const Node& node : inst->graph.nodes) all &= b->supports(inst->graph, node).ok;
            claimed |= all;
          }
        }
        // Only a claimed case needs the (slow) reference.
        const auto start = std::chrono::steady_clock::now();
        absl::StatusOr<std::vector<HostBytes>> reference =
            claimed ? RunReference(*inst) : absl::StatusOr<std::vector<HostBytes>>(std::vector<HostBytes>());
        const double reference_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        std::lock_guard<std::mutex> lock(backend_mu);
        for (size_t b = 0; b < backends.size(); ++b) {
          out[b] = RunOnBackend(*backends[b], c, *inst, reference);
          out[b].reference_ms = reference_ms;
        }
      }
      std::lock_guard<std::mutex> lock(progress_mu);
      ++progress.done;
      for (const CaseResult& r : out) progress.failed += r.verdict == Verdict::kFailed;
      progress.last = &c;
      if (options.progress) options.progress(progress);
    }
  };
  const int threads = std::max(1, std::min<int>(options.threads, static_cast<int>(cases.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  return results;
}

}  // namespace kiln::conformance
