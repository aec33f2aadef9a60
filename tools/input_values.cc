#include "tools/input_values.h"
#include "graph/message_text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <new>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "scheduler/npy.h"
#include "scheduler/npy_input.h"

namespace kiln::tools {

absl::StatusOr<std::optional<InputRange>> InputRangeFor(const Graph& graph,
                                                        absl::string_view input_name) {
  const std::string key = absl::StrCat("input_range.", input_name);
  auto it = graph.metadata.find(key);
  if (it == graph.metadata.end()) return std::optional<InputRange>();
  std::vector<absl::string_view> parts = absl::StrSplit(it->second, ',');
  InputRange r;
  if (parts.size() != 2 || !absl::SimpleAtod(absl::StripAsciiWhitespace(parts[0]), &r.lo) ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(parts[1]), &r.hi) || !std::isfinite(r.lo) ||
      !std::isfinite(r.hi) || r.lo > r.hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("graph metadata '", key, "' = '", it->second, "' is not \"lo,hi\" with lo <= hi"));
  }
  return std::optional<InputRange>(r);
}

namespace {

// FNV-1a: the same in every process (absl::Hash is seeded per process).
uint64_t StableHash(absl::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

std::string FormatBytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / double(int64_t{1} << 30));
  if (n >= (1 << 20)) return absl::StrFormat("%.2f MiB", n / double(1 << 20));
  return absl::StrCat(n, " bytes");
}

}  // namespace

absl::StatusOr<std::vector<InputPlan>> PlanInputs(const Graph& graph,
                                                  const std::vector<std::pair<int, std::string>>& given,
                                                  const InputOptions& options) {
  std::vector<InputPlan> plans;
  int64_t generated = 0;
  std::vector<std::string> generated_names;
  for (int id : graph.inputs) {
    const TensorInfo& t = graph.tensors[id];
    InputPlan p;
    p.tensor = id;
    p.source = "random";
    for (const auto& [gid, src] : given) {
      if (gid == id) {
        p.source = src;
        p.given = true;
      }
    }
    if (p.source == "random" || p.source == "zeros") {
      if (p.source == "random") {
        if (auto range = InputRangeFor(graph, t.name); !range.ok()) return range.status();
      }
      const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
      if (__builtin_add_overflow(generated, bytes, &generated)) generated = INT64_MAX;
      generated_names.push_back(absl::StrCat(QuoteName(t.name), " ", FormatBytes(bytes)));
    } else {
      auto file = NpyFile::Open(p.source);
      if (!file.ok()) {
        return absl::Status(file.status().code(), absl::StrCat("input ", Describe(t), ": ", file.status().message()));
      }
      auto conv = CheckNpyFor(t, *file);
      if (!conv.ok()) return conv.status();
      if (*conv != NpyConversion::kAsIs) {
        p.note = absl::StrCat(QuoteName(t.name), " ", NpyElementName(file->header().element),
                              t.dtype == DType::kQ8_0 ? " quantized to " : " read as ", DTypeName(t.dtype),
                              " (", p.source, ")");
      }
    }
    plans.push_back(std::move(p));
  }
  if (generated > options.max_generated_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the inputs kiln would make up (random or zeros) need ", generated, " bytes, more than the limit of ",
        options.max_generated_bytes, " (", ShortJoin(generated_names, 8),
        "); give them as .npy files, or raise --max-generated-bytes"));
  }
  return plans;
}

absl::StatusOr<HostTensor> MakeInputValue(const Graph& graph, const InputPlan& plan, const InputOptions& options) {
  const TensorInfo& t = graph.tensors[plan.tensor];
  if (plan.source == "zeros") return AllocateFor(t);
  if (plan.source == "random") {
    auto range = InputRangeFor(graph, t.name);
    if (!range.ok()) return range.status();
    auto out = AllocateFor(t);
    if (!out.ok()) return out.status();
    // Each input's values depend on the seed and its name, not on the order.
    FillRandom(t, *range, options.seed ^ StableHash(t.name), *out);
    return out;
  }
  return ReadNpyFor(t, plan.source);
}

std::vector<std::string> InputNotes(const Graph& graph, const std::vector<InputPlan>& plans) {
  std::vector<std::string> lines, unasked;
  for (const InputPlan& p : plans) {
    if (!p.given) unasked.push_back(QuoteName(graph.tensors[p.tensor].name));
  }
  if (!unasked.empty()) {
    lines.push_back(absl::StrCat("random values (no --input given) for ", ShortJoin(unasked, 16)));
  }
  for (const InputPlan& p : plans) {
    if (!p.note.empty()) lines.push_back(absl::StrCat("converted ", p.note));
  }
  return lines;
}

HostTensor RandomInput(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed) {
  HostTensor out = HostTensor::Zeros(t.dtype, t.dims);
  FillRandom(t, range, seed, out);
  return out;
}

void FillRandom(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed, HostTensor& out) {
  std::mt19937_64 rng(seed);
  const int64_t n = t.numel();
  if (t.dtype == DType::kI32) {
    const double lo = range ? std::ceil(range->lo) : 0, hi = range ? std::floor(range->hi) : 15;
    const int64_t a = static_cast<int64_t>(std::clamp(lo, double{INT32_MIN}, double{INT32_MAX}));
    const int64_t b = std::max(a, static_cast<int64_t>(std::clamp(hi, double{INT32_MIN}, double{INT32_MAX})));
    std::uniform_int_distribution<int64_t> dist(a, b);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t v = static_cast<int32_t>(dist(rng));
      std::memcpy(out.data.data() + 4 * i, &v, 4);
    }
    return;
  }
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<double> uniform(range ? range->lo : 0, range ? range->hi : 1);
  auto next = [&]() -> float {
    return range ? static_cast<float>(range->lo == range->hi ? range->lo : uniform(rng))
                 : 0.5f * normal(rng);
  };
  if (t.dtype == DType::kQ8_0) {
    std::vector<float> block(kQ8BlockSize);
    for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
      for (float& v : block) v = next();
      QuantizeQ8Block(block.data(), out.data.data() + b * kQ8BlockBytes);
    }
    return;
  }
  const TensorView view = out.view();
  ForEachIndex(view.rank, view.dims, [&](const int64_t* idx) { StoreElement(view, idx, next()); });
}

}  // namespace kiln::tools
