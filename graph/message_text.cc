#include "graph/message_text.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kiln {

std::string EscapeForMessage(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return absl::CHexEscape(s);
  return absl::StrCat(absl::CHexEscape(s.substr(0, max_bytes)), "...(", s.size(), " bytes)");
}

std::string QuoteName(absl::string_view name) { return absl::StrCat("'", EscapeForMessage(name), "'"); }

std::string ShortList(absl::Span<const int64_t> values) {
  if (values.size() <= static_cast<size_t>(kMaxListInMessage)) return absl::StrCat("[", absl::StrJoin(values, ","), "]");
  // The first entries and the last: enough to recognize the list.
  return absl::StrCat("[", absl::StrJoin(values.subspan(0, kMaxListInMessage - 1), ","), ",...,", values.back(),
                      " (", values.size(), " entries)]");
}

std::string ShortJoin(const std::vector<std::string>& items, int max_items) {
  if (items.size() <= static_cast<size_t>(max_items)) return absl::StrJoin(items, ", ");
  return absl::StrCat(absl::StrJoin(items.begin(), items.begin() + max_items, ", "), ", ... (", items.size(),
                      " in all)");
}

}  // namespace kiln
