// Small text helpers with Redis's exact semantics, shared by the parser and
// the command layer.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cset::resp {

/// Parses a signed 64-bit decimal integer exactly as Redis's string2ll():
/// an optional '-', then digits with no leading zero (except "0" itself), no
/// '+', no spaces, no trailing bytes, within [INT64_MIN, INT64_MAX].
/// Returns nullopt otherwise ("-0", "01", " 1", "", "1x" all fail).
std::optional<int64_t> parse_int64(std::string_view text);

/// ASCII case-insensitive equality (command names, options).
bool iequals(std::string_view a, std::string_view b);

/// ASCII lower-case copy.
std::string to_lower(std::string_view text);

/// ASCII upper-case copy.
std::string to_upper(std::string_view text);

/// `text` as Redis prints an argument with "%.*s" inside an error message:
/// cut at the first NUL byte, at most `max_bytes` bytes, CR and LF replaced
/// by spaces so the reply stays one line.
std::string printable_prefix(std::string_view text, size_t max_bytes);

}  // namespace cset::resp
