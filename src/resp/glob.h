// Glob-style pattern matching with the semantics of Redis's stringmatchlen(),
// for SCAN/SSCAN MATCH, CONFIG GET and COMMAND LIST FILTERBY PATTERN.
//
//   *        any sequence of bytes, including none
//   ?        exactly one byte
//   [abc]    one byte of the class; [^abc] one byte not in it; [a-z] a range
//            (bounds in either order); \x inside a class is the literal x; a
//            class left open runs to the end of the pattern
//   \x       the literal x (a trailing lone '\' matches itself)
//
// Binary-safe. Runs in O(pattern * subject) time and O(1) space whatever
// the pattern (no recursion, so no stack exhaustion on "a*a*a*...").
//
// Thread-safety: pure function.
#pragma once

#include <string_view>

namespace cset::resp {

/// True when `subject` matches `pattern`; ASCII case-insensitive when `nocase`.
bool glob_match(std::string_view pattern, std::string_view subject, bool nocase = false);

}  // namespace cset::resp
