#include "conformance/case.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/tensor.h"
#include "ops/registry.h"

namespace kiln::conformance {
namespace {

std::string MaskName(MaskKind k) {
  switch (k) {
    case MaskKind::kFinite: return "finite";
    case MaskKind::kScattered: return "scattered";
    case MaskKind::kTiles: return "tiles";
    case MaskKind::kRows: return "rows";
    case MaskKind::kWindow: return "window";
    case MaskKind::kMultiSeq: return "multiseq";
    case MaskKind::kUnwritten: return "unwritten";
  }
  return "?";
}

// "" for the default distribution (N(0,1)); otherwise ":what".
std::string DistSuffix(const Dist& d) {
  std::string s;
  switch (d.kind) {
    case Dist::kNormal:
      if (d.unit_rows) s = ":unit";
      else if (d.a != 1) s = absl::StrCat(":N", d.a);
      break;
    case Dist::kUniform: s = absl::StrCat(":U[", d.a, ",", d.b, "]"); break;
    case Dist::kInts: s = absl::StrCat(":ints[", d.a, ",", d.b, "]"); break;
    case Dist::kDistinct: s = absl::StrCat(":distinct[", d.a, ",", d.b, "]"); break;
    case Dist::kOneBad: s = absl::StrCat(":ints[", d.a, ",", d.b, "]+bad"); break;
    case Dist::kGate: s = ":gate"; break;
    case Dist::kBeta: s = ":beta"; break;
    case Dist::kSpecials: s = ":specials"; break;
    case Dist::kMask:
      s = absl::StrCat(":", MaskName(d.mask), d.param ? absl::StrCat(d.param) : "");
      break;
  }
  if (d.nan_from >= 0) absl::StrAppend(&s, ":nan_from", d.nan_from);
  return s;
}

std::string RefName(const ChainRef& r) {
  std::string s = r.node < 0 ? (r.index < 0 ? "-" : absl::StrCat("in", r.index))
                             : absl::StrCat("#", r.node, r.index ? absl::StrCat(".", r.index) : "");
  if (!r.view_dims.empty()) {
    absl::StrAppend(&s, "/view", ShapeString(r.view_dims));
    if (r.view_offset) absl::StrAppend(&s, "+", r.view_offset);
    if (!r.view_strides.empty()) absl::StrAppend(&s, "s", absl::StrJoin(r.view_strides, ","));
  }
  return s;
}

std::string DescribeChain(const Case& c, const std::vector<std::string>& ins) {
  std::vector<std::string> nodes;
  for (const ChainNode& n : c.chain) {
    std::vector<std::string> refs, as;
    for (const ChainRef& r : n.inputs) refs.push_back(RefName(r));
    for (const auto& [k, v] : n.attrs) as.push_back(absl::StrCat(k, "=", AttrToString(v)));
    std::string s = absl::StrCat(n.op, "(", absl::StrJoin(refs, ", "), ")");
    if (!as.empty()) absl::StrAppend(&s, " {", absl::StrJoin(as, ", "), "}");
    for (auto [i, o] : n.inplace) absl::StrAppend(&s, " inplace(", i, "->", o, ")");
    nodes.push_back(std::move(s));
  }
  return absl::StrCat("chain(", absl::StrJoin(ins, ", "), ") [", absl::StrJoin(nodes, " -> "), "]");
}

}  // namespace

std::string Case::Describe() const {
  const OpSchema* schema = is_chain() ? nullptr : FindOp(op);
  std::vector<std::string> ins;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const InputSpec& in = inputs[i];
    std::string role = absl::StrCat("in", i);
    if (schema && !schema->inputs.empty()) {
      role = schema->inputs[std::min(i, schema->inputs.size() - 1)].name;
      if (schema->variadic && i + 1 >= schema->inputs.size()) absl::StrAppend(&role, i);
    }
    if (!in.present) {
      ins.push_back(absl::StrCat(role, "=-"));
      continue;
    }
    std::string layout;
    if (!in.perm.empty()) layout = absl::StrCat("/perm", absl::StrJoin(in.perm, ""));
    if (in.padded) absl::StrAppend(&layout, "/pad");
    ins.push_back(absl::StrCat(role, "=", DTypeName(in.dtype), ShapeString(in.dims), layout,
                               DistSuffix(in.dist)));
  }
  if (is_chain()) return DescribeChain(*this, ins);
  std::vector<std::string> as;
  for (const auto& [k, v] : attrs) as.push_back(absl::StrCat(k, "=", AttrToString(v)));
  std::string s = absl::StrCat(op, "(", absl::StrJoin(ins, ", "), ")");
  if (!as.empty()) absl::StrAppend(&s, " {", absl::StrJoin(as, ", "), "}");
  for (auto [i, o] : inplace) absl::StrAppend(&s, " inplace(", i, "->", o, ")");
  if (expect_error) absl::StrAppend(&s, " expect-error");
  return s;
}

}  // namespace kiln::conformance
