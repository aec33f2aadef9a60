#include "conformance/grid_builder.h"

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include "ops/flash_attn.h"
#include "ops/gated_delta_net.h"

namespace kiln::conformance {
namespace {

int64_t Numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// FNV-1a: a seed that depends only on the case's description.
uint64_t Hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// Fixed per-case overhead in cost units, so that the cover does not favour
// many tiny cases over one slightly larger one.
constexpr double kCaseOverhead = 2e4;

}  // namespace

std::vector<int64_t> Indices(size_t n) {
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(i);
  return v;
}

std::optional<InputSpec> WithLayout(InputSpec in, int64_t layout) {
  const size_t rank = in.dims.size();
  if (layout == kPadded || layout == kPaddedPermuted) in.padded = true;
  if (layout == kPermuted || layout == kPaddedPermuted) {
    // rank 3 [A,B,C] stored [B,A,C]; rank 4 [A,B,C,D] stored [A,C,B,D]
    // (e.g. token-major q viewed from head-major storage).
    if (rank == 3) in.perm = {1, 0, 2};
    else if (rank == 4) in.perm = {0, 2, 1, 3};
    else return std::nullopt;
  }
  return in;
}

double CaseCost(const Case& c) {
  auto dims = [&](size_t i) -> const std::vector<int64_t>& { return c.inputs[i].dims; };
  double elements = 0;
  for (const InputSpec& in : c.inputs) elements += in.present ? Numel(in.dims) : 0;
  if (c.op == "flash_attn") {
    const auto &q = dims(kFlashAttnQ), &k = dims(kFlashAttnK), &v = dims(kFlashAttnV);
    return elements + double(q[0]) * q[1] * q[2] * k[1] * (q[3] + v[3]);
  }
  if (c.op == "gated_delta_net") {
    const auto &q = dims(kGdnQ), &v = dims(kGdnV);
    // Its reference keeps the state in a plain array: cheaper per flop.
    return elements + 0.4 * q[0] * q[1] * v[2] * q[3] * v[3];
  }
  if (c.op == "matmul") {
    const auto &a = dims(0), &b = dims(1);
    const int64_t m = a[a.size() - 2], k = a.back(), n = b.back();
    const double batch = std::max(Numel(a) / (m * k), Numel(b) / std::max<int64_t>(1, k * n));
    return elements + batch * m * n * k * 2;
  }
  if (c.op == "linear") {
    return elements + 2.0 * Numel(dims(0)) * dims(1)[0];
  }
  if (c.op == "conv1d_causal") return elements + 2.0 * Numel(dims(0)) * dims(1)[1];
  return 3 * elements;
}

std::vector<Case> Expand(const SubGrid& grid, GridSize size) {
  if (grid.full_only && size != GridSize::kFull) return {};
  // Every valid point: its case, cost and value indices.
  struct Entry {
    Case c;
    double cost;
    std::vector<int> idx;
  };
  std::vector<Entry> entries;
  std::set<std::string> seen;
  std::vector<int> idx(grid.axes.size(), 0);
  while (true) {
    Point p;
    for (size_t a = 0; a < grid.axes.size(); ++a) p[grid.axes[a].name] = grid.axes[a].values[idx[a]];
    if (std::optional<Case> c = grid.make(p)) {
      c->group = grid.name;
      std::string d = c->Describe();
      const double cost = CaseCost(*c);
      if (cost <= grid.max_cost && seen.insert(d).second) {
        c->seed = Hash(d);
        entries.push_back({*std::move(c), cost, idx});
      }
    }
    size_t a = 0;
    for (; a < grid.axes.size(); ++a) {
      if (++idx[a] < static_cast<int>(grid.axes[a].values.size())) break;
      idx[a] = 0;
    }
    if (a == grid.axes.size()) break;
  }
  std::vector<Case> out;
  if (size == GridSize::kFull) {
    for (Entry& e : entries) out.push_back(std::move(e.c));
    return out;
  }
  // Weighted greedy cover of every item (an axis value, or a pair of values
  // of two axes) some valid point takes: pick the point covering most new
  // items per unit of cost, until none is left. Items are numbered densely.
  const size_t n_axes = grid.axes.size();
  std::vector<int> item_base;  // per axis (strength 1) or axis pair (strength 2)
  int n_items = 0;
  for (size_t a = 0; a < n_axes; ++a) {
    const int na = static_cast<int>(grid.axes[a].values.size());
    if (grid.strength < 2) {
      item_base.push_back(n_items);
      n_items += na;
      continue;
    }
    for (size_t b = a + 1; b < n_axes; ++b) {
      item_base.push_back(n_items);
      n_items += na * static_cast<int>(grid.axes[b].values.size());
    }
  }
  auto items = [&](const std::vector<int>& idx) {
    std::vector<int> out;
    size_t k = 0;
    for (size_t a = 0; a < n_axes; ++a) {
      if (grid.strength < 2) {
        out.push_back(item_base[k++] + idx[a]);
        continue;
      }
      for (size_t b = a + 1; b < n_axes; ++b) {
        out.push_back(item_base[k++] + idx[a] * static_cast<int>(grid.axes[b].values.size()) + idx[b]);
      }
    }
    return out;
  };
  std::vector<std::vector<int>> entry_items;
  std::vector<char> uncovered(n_items, 0);
  int left = 0;
  for (const Entry& e : entries) {
    entry_items.push_back(items(e.idx));
    for (int item : entry_items.back()) {
      left += !uncovered[item];
      uncovered[item] = 1;
    }
  }
  std::vector<bool> picked(entries.size(), false);
  while (left > 0) {
    size_t best = 0;
    double best_score = -1;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (picked[i]) continue;
      int fresh = 0;
      for (int item : entry_items[i]) fresh += uncovered[item];
      const double score = fresh / (entries[i].cost + kCaseOverhead);
      if (fresh > 0 && score > best_score) {
        best = i;
        best_score = score;
      }
    }
    picked[best] = true;
    for (int item : entry_items[best]) {
      left -= uncovered[item];
      uncovered[item] = 0;
    }
  }
  // A few random cheap points: combinations the cover did not make.
  std::vector<size_t> cheap;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!picked[i] && entries[i].cost <= grid.quick_extra_cost) cheap.push_back(i);
  }
  std::mt19937_64 rng(Hash(grid.name));
  std::shuffle(cheap.begin(), cheap.end(), rng);
  for (size_t i = 0; i < cheap.size() && static_cast<int>(i) < grid.quick_extra; ++i) picked[cheap[i]] = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (picked[i]) out.push_back(std::move(entries[i].c));
  }
  return out;
}

}  // namespace kiln::conformance
