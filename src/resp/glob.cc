#include "resp/glob.h"

#include <cstddef>
#include <utility>

namespace cset::resp {

namespace {

unsigned char fold(unsigned char c, bool nocase) {
  return (nocase && c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

// Matches one subject byte against the single-byte token at pattern[p]
// ('?', a class, an escape or a literal). Sets `next` to the index after the
// token. REQUIRES: p < pattern.size() and pattern[p] != '*'.
bool match_token(std::string_view pattern, size_t p, unsigned char c, bool nocase, size_t& next) {
  const size_t n = pattern.size();
  c = fold(c, nocase);
  auto at = [&](size_t i) { return static_cast<unsigned char>(pattern[i]); };
  switch (pattern[p]) {
    case '?':
      next = p + 1;
      return true;
    case '\\':
      if (p + 1 < n) {
        next = p + 2;
        return fold(at(p + 1), nocase) == c;
      }
      next = p + 1;
      return c == '\\';
    case '[': {
      size_t i = p + 1;
      bool negate = i < n && pattern[i] == '^';
      if (negate) ++i;
      bool match = false;
      while (i < n && pattern[i] != ']') {
        if (pattern[i] == '\\' && i + 1 < n) {
          if (fold(at(i + 1), nocase) == c) match = true;
          i += 2;
        } else if (i + 2 < n && pattern[i + 1] == '-') {
          unsigned char lo = fold(at(i), nocase);
          unsigned char hi = fold(at(i + 2), nocase);
          if (lo > hi) std::swap(lo, hi);
          if (c >= lo && c <= hi) match = true;
          i += 3;
        } else {
          if (fold(at(i), nocase) == c) match = true;
          i += 1;
        }
      }
      next = i < n ? i + 1 : n;  // past ']' or, for an open class, the end
      return negate ? !match : match;
    }
    default:
      next = p + 1;
      return fold(at(p), nocase) == c;
  }
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view subject, bool nocase) {
  // Classic wildcard matching with one backtrack point: every token but '*'
  // consumes exactly one byte, so retrying from the last star is complete.
  size_t p = 0;
  size_t s = 0;
  size_t star_p = std::string_view::npos;  // pattern index just after the last '*'
  size_t star_s = 0;                       // subject index that star currently ends at
  while (s < subject.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;
      star_p = p;
      star_s = s;
      continue;
    }
    size_t next = 0;
    if (p < pattern.size() &&
        match_token(pattern, p, static_cast<unsigned char>(subject[s]), nocase, next)) {
      p = next;
      ++s;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    s = ++star_s;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace cset::resp
