#include "tools/args.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kiln::tools {
namespace {

const FlagSpec* FindSpec(absl::Span<const FlagSpec> specs, absl::string_view name, char short_name) {
  for (const FlagSpec& s : specs) {
    if ((!name.empty() && s.name == name) || (short_name && s.short_name == short_name)) return &s;
  }
  return nullptr;
}

}  // namespace

bool ParsedArgs::has(absl::string_view name) const { return values.find(name) != values.end(); }

std::string ParsedArgs::Get(absl::string_view name, absl::string_view fallback) const {
  auto it = values.find(name);
  return it == values.end() || it->second.empty() ? std::string(fallback) : it->second.back();
}

std::vector<std::string> ParsedArgs::GetAll(absl::string_view name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

absl::StatusOr<int64_t> ParsedArgs::GetInt(absl::string_view name, int64_t fallback, int64_t min,
                                           int64_t max) const {
  if (!has(name)) return fallback;
  const std::string text = Get(name);
  int64_t v;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " expects an integer, got '", text, "'"));
  }
  if (v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be in [", min, ", ", max, "], got ", v));
  }
  return v;
}

absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> specs) {
  ParsedArgs out;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg == "-" || !absl::StartsWith(arg, "-")) {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    std::string name, value;
    bool has_value = false;
    const FlagSpec* spec = nullptr;
    if (absl::StartsWith(arg, "--")) {
      absl::string_view body = absl::string_view(arg).substr(2);
      const size_t eq = body.find('=');
      name = std::string(body.substr(0, eq));
      if (eq != absl::string_view::npos) {
        value = std::string(body.substr(eq + 1));
        has_value = true;
      }
      spec = FindSpec(specs, name, 0);
    } else if (arg.size() == 2) {
      spec = FindSpec(specs, "", arg[1]);
    }
    if (!spec) return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    const std::string shown = absl::StrCat("--", spec->name);
    if (spec->value_name.empty()) {  // a switch
      if (has_value && value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat(shown, " takes no value (or =true/=false)"));
      }
      if (has_value && value == "false") {
        out.values.erase(spec->name);
        continue;
      }
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(shown, " needs a value (", spec->value_name, ")"));
      }
      value = args[++i];
    }
    auto& slot = out.values[spec->name];
    if (!slot.empty() && !spec->repeated && !spec->value_name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(shown, " is given more than once"));
    }
    slot.push_back(value);
  }
  return out;
}

std::string FlagsHelp(absl::Span<const FlagSpec> specs) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const FlagSpec& s : specs) {
    std::string l = absl::StrCat("  ", s.short_name ? absl::StrCat("-", std::string(1, s.short_name), ", ") : "    ",
                                 "--", s.name, s.value_name.empty() ? "" : absl::StrCat(" ", s.value_name));
    width = std::max(width, l.size());
    left.push_back(std::move(l));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    absl::StrAppend(&out, left[i], std::string(width + 2 - left[i].size(), ' '), specs[i].help,
                    specs[i].repeated ? " (repeatable)" : "", "\n");
  }
  return out;
}

}  // namespace kiln::tools
