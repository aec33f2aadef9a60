// A node of the IR: an op applied to input tensors, with typed attributes,
// writing one or more output tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include "absl/strings/string_view.h"
#include <variant>
#include <vector>

namespace kiln {

using AttrValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>>;
using Attrs = std::map<std::string, AttrValue, std::less<>>;

struct Node {
  std::string name;
  std::string op;
  std::vector<int> inputs;   // tensor ids; -1 for an absent optional input
  std::vector<int> outputs;  // tensor ids
  Attrs attrs;               // complete after validation (defaults filled)

  bool has_input(int i) const {
    return i < static_cast<int>(inputs.size()) && inputs[i] >= 0;
  }
  // Typed reads of validated attributes (ints read as floats where asked).
  bool GetBool(absl::string_view key) const;
  int64_t GetInt(absl::string_view key) const;
  double GetFloat(absl::string_view key) const;
  const std::string& GetString(absl::string_view key) const;
  const std::vector<int64_t>& GetInts(absl::string_view key) const;
};

std::string AttrToString(const AttrValue& v);

}  // namespace kiln
