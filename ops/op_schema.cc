#include "ops/op_schema.h"
#include "graph/message_text.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kiln {

std::string NodeLabel(const Node& node) {
  return absl::StrCat("node ", QuoteName(node.name), " (", EscapeForMessage(node.op), ")");
}

absl::Status InferContext::Error(absl::string_view msg) const {
  return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node_), ": ", msg));
}

absl::Status InferContext::InputError(int i, absl::string_view msg) const {
  std::string what = absl::StrCat("input ", i);
  if (i < static_cast<int>(roles_.size())) what = absl::StrCat("input ", QuoteName(roles_[i]));
  if (i < num_inputs() && inputs_[i] != nullptr) {
    absl::StrAppend(&what, " (tensor ", QuoteName(i < static_cast<int>(tensor_names_.size()) ? tensor_names_[i] : ""),
                    " ", DTypeName(inputs_[i]->dtype), " ", ShapeString(inputs_[i]->dims), ")");
  }
  return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node_), ": ", what, ": ", msg));
}

namespace {

absl::string_view TypeName(AttrType t) {
  switch (t) {
    case AttrType::kBool: return "bool";
    case AttrType::kInt: return "int";
    case AttrType::kFloat: return "float";
    case AttrType::kString: return "string";
    case AttrType::kInts: return "int list";
  }
  return "?";
}

// Coerces `v` to the spec's type where lossless (int -> float, bool <-> int 0/1).
bool Coerce(AttrType type, AttrValue& v) {
  switch (type) {
    case AttrType::kBool:
      if (std::holds_alternative<bool>(v)) return true;
      if (auto* i = std::get_if<int64_t>(&v); i && (*i == 0 || *i == 1)) { v = *i == 1; return true; }
      return false;
    case AttrType::kInt:
      if (std::holds_alternative<int64_t>(v)) return true;
      if (auto* d = std::get_if<double>(&v); d && std::isfinite(*d) && std::trunc(*d) == *d &&
          std::fabs(*d) < 9.0e15) { v = static_cast<int64_t>(*d); return true; }
      return false;
    case AttrType::kFloat:
      if (std::holds_alternative<double>(v)) return true;
      if (auto* i = std::get_if<int64_t>(&v)) { v = static_cast<double>(*i); return true; }
      return false;
    case AttrType::kString: return std::holds_alternative<std::string>(v);
    case AttrType::kInts: return std::holds_alternative<std::vector<int64_t>>(v);
  }
  return false;
}

}  // namespace

absl::Status NormalizeAttrs(const OpSchema& schema, Node& node) {
  for (const auto& [key, value] : node.attrs) {
    bool known = false;
    for (const AttrSpec& s : schema.attrs) known |= s.name == key;
    if (!known) {
      std::vector<std::string> names;
      for (const AttrSpec& s : schema.attrs) names.push_back(s.name);
      return absl::InvalidArgumentError(absl::StrCat(
          NodeLabel(node), ": unknown attribute ", QuoteName(key), " (", schema.name, " takes: ",
          names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
    }
  }
  for (const AttrSpec& s : schema.attrs) {
    auto it = node.attrs.find(s.name);
    if (it == node.attrs.end()) {
      if (!s.default_value) {
        return absl::InvalidArgumentError(
            absl::StrCat(NodeLabel(node), ": missing required attribute ", QuoteName(s.name)));
      }
      node.attrs.emplace(s.name, *s.default_value);
      continue;
    }
    AttrValue& v = it->second;
    if (!Coerce(s.type, v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          NodeLabel(node), ": attribute ", QuoteName(s.name), " must be ", TypeName(s.type),
          ", got ", AttrToString(v)));
    }
    auto check_range = [&](double x) -> absl::Status {
      if (std::isnan(x) || x < s.min || x > s.max) {
        return absl::InvalidArgumentError(absl::StrCat(
            NodeLabel(node), ": attribute ", QuoteName(s.name), " = ", x, " is out of range [", s.min,
            ", ", s.max, "]"));
      }
      return absl::OkStatus();
    };
    if (auto* i = std::get_if<int64_t>(&v)) {
      if (auto st = check_range(static_cast<double>(*i)); !st.ok()) return st;
    } else if (auto* d = std::get_if<double>(&v)) {
      if (auto st = check_range(*d); !st.ok()) return st;
    } else if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
      for (int64_t x : *l) {
        if (auto st = check_range(static_cast<double>(x)); !st.ok()) return st;
      }
    } else if (auto* str = std::get_if<std::string>(&v); str && !s.choices.empty()) {
      bool ok = false;
      for (const auto& c : s.choices) ok |= c == *str;
      if (!ok) {
        return absl::InvalidArgumentError(absl::StrCat(
            NodeLabel(node), ": attribute ", QuoteName(s.name), " = \"", EscapeForMessage(*str), "\" is not one of: ",
            absl::StrJoin(s.choices, ", ")));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace kiln
