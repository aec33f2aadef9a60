// Names, strings and lists as they appear inside error messages.
//
// A graph file may hold any bytes in a name or attribute value (a NUL cut
// messages short; control bytes can rewrite a terminal) and lists of any
// length (a 4096-entry list made an 8 KB line). Messages embed them through
// these helpers: bytes outside printable ASCII are C-escaped (\0, \x1b), and
// text and lists are shortened, so an error stays one readable line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace kiln {

inline constexpr size_t kMaxNameInMessage = 160;  // bytes of a name shown, before escaping
inline constexpr int kMaxListInMessage = 8;       // entries of a list shown

// s escaped, and cut after `max_bytes` with "...(N bytes)".
std::string EscapeForMessage(absl::string_view s, size_t max_bytes = kMaxNameInMessage);
// 'name', escaped and shortened: the form every message quotes names in.
std::string QuoteName(absl::string_view name);
// "[1,2,3]", or "[1,2,3,4,5,6,7,...,9 (4096 entries)]" past kMaxListInMessage.
std::string ShortList(absl::Span<const int64_t> values);
// Items joined by ", ", the first `max_items` and then "... (N in all)".
std::string ShortJoin(const std::vector<std::string>& items, int max_items = kMaxListInMessage);

}  // namespace kiln
