#include "conformance/runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
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

absl::StatusOr<Graph> BuildCaseGraph(const Case& c) {
  const OpSchema* schema = FindOp(c.op);
  if (!schema) return absl::NotFoundError(absl::StrCat("unknown op '", c.op, "'"));
  if (auto st = CheckCase(c, *schema); !st.ok()) return st;
  GraphBuilder b(absl::StrCat("conformance.", c.op));
  std::vector<Tensor> ins;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const InputSpec& in = c.inputs[i];
    const std::string name = RoleName(*schema, i);
    if (!in.present) {
      ins.push_back(Tensor{});
    } else if (in.is_view()) {
      ins.push_back(AddViewInput(b, name, in));
    } else {
      ins.push_back(b.Input(name, in.dtype, in.dims));
    }
  }
  // A distinctive node name: an expected error must name it.
  for (Tensor t : b.Op(c.op, ins, c.attrs, absl::StrCat(c.op, "_under_test"))) b.Output(t);
  return b.Build();
}

absl::StatusOr<Instance> Instantiate(const Case& c) {
  auto graph = BuildCaseGraph(c);
  if (!graph.ok()) return graph.status();
  Instance inst;
  inst.graph = *std::move(graph);
  const Graph& g = inst.graph;
  inst.host.resize(g.tensors.size());
  for (int id : g.inputs) {
    // Padding around views reads as NaN (i32: -1).
    inst.host[id].assign(ContiguousBytes(g.tensors[id].dtype, g.tensors[id].dims), std::byte{0xff});
  }
  std::mt19937_64 rng(c.seed);
  const Node& node = g.nodes[0];
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].present) continue;
    const int id = node.inputs[i];
    const TensorInfo& t = g.tensors[id];
    std::byte* base = inst.host[g.StorageOf(id)].data() + t.offset;
    FillInput(TensorView::Of(t, base), c.inputs[i].dist, rng);
  }
  return inst;
}

absl::StatusOr<std::vector<HostBytes>> RunReference(const Instance& inst) {
  const Graph& g = inst.graph;
  const Node& node = g.nodes[0];
  std::vector<TensorView> in, out;
  for (int id : node.inputs) {
    if (id < 0) {
      in.push_back(TensorView{});
      continue;
    }
    const TensorInfo& t = g.tensors[id];
    auto* base = const_cast<std::byte*>(inst.host[g.StorageOf(id)].data());
    in.push_back(TensorView::Of(t, base + t.offset));
  }
  std::vector<HostBytes> result(node.outputs.size());
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    const TensorInfo& t = g.tensors[node.outputs[o]];
    result[o].assign(ContiguousBytes(t.dtype, t.dims), std::byte{0});
    out.push_back(TensorView::Of(t, result[o].data()));
  }
  if (auto st = FindOp(node.op)->reference(node, in, out); !st.ok()) return st;
  return result;
}

CaseResult RunOnBackend(Backend& backend, const Case& c, const Instance& inst,
                        const absl::StatusOr<std::vector<HostBytes>>& reference) {
  CaseResult r;
  const Graph& g = inst.graph;
  const Node& node = g.nodes[0];
  const Support support = backend.supports(g, node);
  if (!support.ok) {
    r.verdict = Verdict::kDeclined;
    r.reason = support.reason.empty() ? "(declined without a reason)" : support.reason;
    return r;
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

  // One buffer per graph input and per output not run in place, each laid
  // out as [front guard][tensor bytes][back guard].
  const int n = static_cast<int>(g.tensors.size());
  std::vector<int> aliased_to(n, -1);  // output id -> the input id it shares memory with
  for (auto [i, o] : c.inplace) aliased_to[node.outputs[o]] = node.inputs[i];
  std::vector<std::unique_ptr<Buffer>> buffers(n);
  std::vector<HostBytes> image(n);  // what each buffer holds before the run
  Bindings bindings;
  bindings.tensors.resize(n);
  for (int id = 0; id < n; ++id) {
    const TensorInfo& t = g.tensors[id];
    if (t.is_view() || aliased_to[id] >= 0) continue;
    const bool is_input = t.producer < 0;
    const size_t bytes = static_cast<size_t>(ContiguousBytes(t.dtype, t.dims));
    HostBytes& img = image[id];
    img.resize(kGuardFront + bytes + kGuardBack);
    for (size_t i = 0; i < img.size(); ++i) img[i] = GuardByte(i);
    if (is_input) {
      std::memcpy(img.data() + kGuardFront, inst.host[id].data(), bytes);
    } else {
      std::memset(img.data() + kGuardFront, static_cast<int>(kOutputSentinel), bytes);
    }
    auto buffer = backend.Allocate(img.size(), is_input ? BufferUsage::kInput : BufferUsage::kOutput,
                                   absl::StrCat("tensor ", Describe(t)));
    if (!buffer.ok()) return fail(absl::StrCat("Allocate(", img.size(), "): ", buffer.status().ToString()));
    if (auto st = backend.Upload(**buffer, 0, img.data(), img.size()); !st.ok()) {
      return fail(absl::StrCat("Upload: ", st.ToString()));
    }
    buffers[id] = *std::move(buffer);
    bindings.tensors[id] = {buffers[id].get(), kGuardFront};
  }
  for (int id = 0; id < n; ++id) {
    if (aliased_to[id] >= 0) bindings.tensors[id] = bindings.tensors[aliased_to[id]];
    const TensorInfo& t = g.tensors[id];
    if (t.is_view()) {
      bindings.tensors[id] = bindings.tensors[t.view_of];
      bindings.tensors[id].offset += static_cast<size_t>(t.offset);
    }
  }

  const auto start = std::chrono::steady_clock::now();
  absl::Status run;
  const char* step = "Prepare";
  auto prepared = backend.Prepare(Split{&g, {0}}, bindings, PrepareOptions{});
  if (!prepared.ok()) {
    run = prepared.status();
  } else {
    step = "Execute";
    auto point = backend.Execute(**prepared, ExecuteOptions{});
    run = point.status();
    if (run.ok()) {
      step = "Wait";
      run = backend.Wait(*point);
    }
  }
  r.backend_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (c.expect_error) {
    if (run.ok()) return fail("expected a run-time error (an index out of range), the backend reported success");
    if (!absl::StrContains(run.message(), node.name)) {
      return fail(absl::StrCat("the error does not name the node '", node.name, "': ", run.ToString()));
    }
  } else if (!run.ok()) {
    return fail(absl::StrCat(step, ": ", run.ToString()));
  }

  // Guards, inputs, then outputs.
  std::vector<HostBytes> got(n);
  for (int id = 0; id < n; ++id) {
    if (!buffers[id]) continue;
    got[id].resize(image[id].size());
    if (auto st = backend.Download(*buffers[id], 0, got[id].data(), got[id].size()); !st.ok()) {
      return fail(absl::StrCat("Download: ", st.ToString()));
    }
    const std::string what =
        absl::StrCat(g.tensors[id].producer < 0 ? "input '" : "output '", g.tensors[id].name, "'");
    const size_t end = image[id].size() - kGuardBack;
    std::string change = FirstChange(got[id], image[id], 0, kGuardFront);
    if (!change.empty()) return fail(absl::StrCat("wrote before the start of ", what, " (guard): ", change));
    change = FirstChange(got[id], image[id], end, got[id].size());
    if (!change.empty()) return fail(absl::StrCat("wrote past the end of ", what, " (guard): ", change));
    bool written_in_place = false;
    for (int a : aliased_to) written_in_place |= a == id;
    if (g.tensors[id].producer < 0 && !written_in_place) {
      change = FirstChange(got[id], image[id], kGuardFront, end);
      if (!change.empty()) return fail(absl::StrCat("modified ", what, ": ", change));
    }
  }
  if (c.expect_error) {
    r.verdict = Verdict::kPassed;
    return r;
  }
  r.tolerance = Tolerance(node.op, ToleranceDType(g, node));
  double worst = 0;
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    const int id = node.outputs[o];
    const TensorInfo& t = g.tensors[id];
    const int storage = aliased_to[id] >= 0 ? aliased_to[id] : id;
    const TensorView actual = TensorView::Of(t, got[storage].data() + kGuardFront);
    const TensorView want = TensorView::Of(t, const_cast<std::byte*>((*reference)[o].data()));
    const Comparison cmp = Compare(actual, want, r.tolerance);
    if (cmp.ok || cmp.nmse > 0) worst = std::max(worst, cmp.nmse);
    if (!cmp.ok) {
      r.nmse = worst;
      return fail(absl::StrCat("output '", t.name, "': ", cmp.error));
    }
  }
  r.nmse = worst;
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
          for (Backend* b : backends) claimed |= b->supports(inst->graph, inst->graph.nodes[0]).ok;
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
