#include "graph/node.h"
#include "graph/message_text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kiln {
namespace {
template <typename T>
const T* Find(const Attrs& attrs, absl::string_view key) {
  auto it = attrs.find(key);
  return it == attrs.end() ? nullptr : std::get_if<T>(&it->second);
}
}  // namespace

bool Node::GetBool(absl::string_view key) const {
  const bool* v = Find<bool>(attrs, key);
  return v && *v;
}
int64_t Node::GetInt(absl::string_view key) const {
  const int64_t* v = Find<int64_t>(attrs, key);
  return v ? *v : 0;
}
double Node::GetFloat(absl::string_view key) const {
  if (const double* v = Find<double>(attrs, key)) return *v;
  if (const int64_t* v = Find<int64_t>(attrs, key)) return static_cast<double>(*v);
  return 0;
}
const std::string& Node::GetString(absl::string_view key) const {
  static const std::string kEmpty;
  const std::string* v = Find<std::string>(attrs, key);
  return v ? *v : kEmpty;
}
const std::vector<int64_t>& Node::GetInts(absl::string_view key) const {
  static const std::vector<int64_t> kEmpty;
  const std::vector<int64_t>* v = Find<std::vector<int64_t>>(attrs, key);
  return v ? *v : kEmpty;
}

std::string AttrToString(const AttrValue& v) {
  struct {
    std::string operator()(bool b) { return b ? "true" : "false"; }
    std::string operator()(int64_t i) { return absl::StrCat(i); }
    std::string operator()(double d) { return absl::StrCat(d); }
    std::string operator()(const std::string& s) { return absl::StrCat("\"", EscapeForMessage(s), "\""); }
    std::string operator()(const std::vector<int64_t>& l) { return ShortList(l); }
  } visitor;
  return std::visit(visitor, v);
}

}  // namespace kiln
