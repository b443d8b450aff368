// Reply serializer for RESP2 and RESP3.
//
// A ReplyWriter appends replies to a caller-owned std::string, in the
// protocol the connection speaks (2 until HELLO 3 switches it). Types that
// RESP2 lacks degrade as Redis degrades them:
//
//   reply        RESP3                         RESP2
//   null         _\r\n                         $-1\r\n
//   null array   _\r\n                         *-1\r\n
//   map(n)       %n\r\n + n key/value pairs    *2n\r\n + the same 2n items
//   set(n)       ~n\r\n                        *n\r\n
//   boolean      #t\r\n / #f\r\n               :1\r\n / :0\r\n
//   double       ,1.5\r\n (inf, -inf, nan)     $3\r\n1.5\r\n
//   verbatim     =N\r\ntxt:payload\r\n         $n\r\npayload\r\n
//
// Simple strings and errors are one line: CR and LF in them become spaces
// (as Redis's addReplyErrorFormat does), so no input can break the framing.
// Aggregates are written header first; the caller then writes exactly the
// announced number of elements (2n for a map).
//
// Thread-safety: none; one writer per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "cset/status.h"

namespace cset::resp {

class ReplyWriter {
 public:
  /// Error replies counted by code word (the text before the first space).
  using ErrorCounts = std::map<std::string, uint64_t, std::less<>>;

  /// REQUIRES: `out` (and `errors` when given) outlive the writer; protocol
  /// is 2 or 3. Every error() adds one to `errors[code word]`.
  explicit ReplyWriter(std::string* out, int protocol = 2, ErrorCounts* errors = nullptr)
      : out_(out), protocol_(protocol), errors_(errors) {}

  int protocol() const { return protocol_; }
  /// HELLO's switch. REQUIRES: 2 or 3.
  void set_protocol(int protocol) { protocol_ = protocol; }
  std::string& buffer() { return *out_; }

  /// +text
  void simple_string(std::string_view text);
  /// +OK
  void ok() { simple_string("OK"); }
  /// -line, where `line` starts with its code word ("ERR syntax error").
  void error(std::string_view line);
  /// -CODE message (Status::to_string()). REQUIRES: !status.is_ok().
  void error(const Status& status);
  /// :value
  void integer(int64_t value);
  /// $len payload (binary-safe).
  void bulk_string(std::string_view payload);
  /// Null bulk string.
  void null();
  /// Null array (RESP2 *-1; RESP3 has one null).
  void null_array();
  void array_header(size_t count);
  /// `pairs` key/value pairs follow (2 * pairs elements).
  void map_header(size_t pairs);
  void set_header(size_t count);
  void boolean(bool value);
  void double_value(double value);
  /// Verbatim string; `format` is exactly three bytes ("txt", "mkd").
  void verbatim(std::string_view payload, std::string_view format = "txt");

  /// An array of bulk strings.
  void bulk_array(std::span<const std::string> items);
  void bulk_array(std::span<const std::string_view> items);

 private:
  void line(char type, std::string_view text);  // type + text with CR/LF mapped + CRLF
  void header(char type, uint64_t count);

  std::string* out_;
  int protocol_;
  ErrorCounts* errors_ = nullptr;
};

/// The shortest decimal text that reads back as `value` ("1.5", "3", "1e+100",
/// "inf", "-inf", "nan"), as Redis 7 formats doubles.
std::string format_double(double value);

}  // namespace cset::resp
