// Incremental parser of client requests: RESP multibulk arrays (what every
// client library sends, RESP2 and RESP3 alike) and inline commands (what
// telnet and redis-cli in some modes send).
//
// ## Input
// Bytes arrive in arbitrary chunks through feed() (or prepare()/commit(),
// which lets the caller read from the socket straight into the parser's
// buffer). next() then returns complete commands one at a time, in order.
// The result never depends on how the stream was chunked.
//
// ## Framing (Redis's rules, networking.c)
//   multibulk := '*' count CRLF ( '$' length CRLF payload CRLF ){count}
//   inline    := any line not starting with '*', ended by LF (a CR before the
//                LF is dropped), split into arguments as Redis's
//                sdssplitargs(): blanks separate, "double quotes" with \n \r
//                \t \b \a \xHH and \<any> escapes, 'single quotes' with \'
//                only; a closing quote must be followed by a blank or the end
//                of the line; a NUL byte ends the line.
// `count` and `length` are decimal as Redis's string2ll (text.h). A count <= 0
// and an empty inline line are no command at all and are skipped. Stricter
// than Redis: the CRLF after a payload and the LF after a number's CR are
// checked (Redis skips two bytes blindly), so a desynchronised stream is
// noticed instead of misread.
//
// ## Limits (limits.h), enforced before anything is allocated
// - count > max_args, a malformed count: protocol error
//   "ERR Protocol error: invalid multibulk length".
// - length < 0, > max_skip_bulk_bytes, malformed: protocol error
//   "ERR Protocol error: invalid bulk length".
// - a byte other than '$' where a bulk header starts: protocol error
//   "ERR Protocol error: expected '$', got 'x'".
// - an inline line over max_inline_bytes: protocol error
//   "ERR Protocol error: too big inline request"; unbalanced quotes:
//   "ERR Protocol error: unbalanced quotes in request".
// - a bulk over max_bulk_bytes, or a frame that would exceed
//   max_request_bytes: the command is well formed, so the stream stays in
//   sync: its remaining bytes are discarded as they arrive (never buffered)
//   and, at the end of its frame, next() reports kTooBig with
//   "TOOBIG request exceeds N bytes". The connection stays usable.
// - before authentication (set_authenticated(false), for --requirepass),
//   Redis's pre-auth bounds: a count over 10 is "ERR Protocol error:
//   unauthenticated multibulk length", a bulk over 16384 bytes "ERR Protocol
//   error: unauthenticated bulk length" (protocol errors).
// A protocol error is final: Redis answers it and closes the connection, and
// so must the caller; the parser answers kProtocolError from then on.
//
// ## Memory
// The buffer holds the unparsed bytes: at most one partial command (bounded
// by max_request_bytes, or by max_inline_bytes for an inline one) plus
// whatever complete commands the caller has not taken with next() yet. A
// caller that drains next() until kNeedMore before each feed() therefore
// holds at most max_request_bytes plus one chunk. buffered_bytes() reports
// it, for back-pressure.
//
// ## Lifetimes (zero copy)
// The argument views returned by next() point into the parser's buffer
// (multibulk) or into a scratch string (inline). They stay valid until the
// next call of next(), feed(), prepare() or commit(), or the parser's
// destruction. Copy what must live longer.
//
// Thread-safety: none; one parser per connection, used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "resp/byte_buffer.h"
#include "resp/limits.h"

namespace cset::resp {

enum class ParseStatus : uint8_t {
  kNeedMore,       // no complete command is buffered: feed more bytes
  kCommand,        // `args` holds one complete command (never empty)
  kTooBig,         // a well-framed command over a limit was discarded: answer
                   // '-' + `error`, keep the connection
  kProtocolError,  // answer '-' + `error`, then close the connection
};

/// One step of the parser. Views are valid as described under "Lifetimes".
struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  /// kCommand: the arguments, binary-safe; args[0] is the command name.
  std::span<const std::string_view> args;
  /// kTooBig / kProtocolError: the error line without '-' and CRLF,
  /// e.g. "ERR Protocol error: invalid bulk length".
  std::string_view error;
  /// kCommand: true for an inline command.
  bool is_inline = false;
};

class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = Limits{});

  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  /// Appends bytes received from the client. After a protocol error the
  /// bytes are dropped.
  void feed(std::string_view bytes);

  /// Returns `max_bytes` of writable space at the end of the buffer for a
  /// read(2) to fill; then call commit() with the number of bytes written
  /// (<= max_bytes) before any other call.
  std::span<char> prepare(size_t max_bytes);
  void commit(size_t bytes);

  /// Parses the next command from the buffered bytes.
  ParseResult next();

  /// Bytes held in the buffer (unparsed input plus a partial command).
  size_t buffered_bytes() const { return buffer_.size() - begin_; }

  /// True after a protocol error.
  bool failed() const { return state_ == State::kFailed; }

  /// False while the connection still owes an AUTH: applies Redis's tight
  /// pre-auth bounds (see "Limits" above) to commands not yet parsed.
  /// Default true.
  void set_authenticated(bool authenticated) { authenticated_ = authenticated; }

 private:
  enum class State : uint8_t { kStart, kBulkHeader, kBulkPayload, kFailed };
  enum class Step : uint8_t { kContinue, kNeedMore, kDone };

  Step parse_start();
  Step parse_multibulk_header();
  Step parse_bulk_header();
  Step parse_bulk_payload();
  Step parse_inline();
  // Finds the CR ending a number line that starts at pos_ (after the '*' or
  // '$'); kNeedMore when it has not arrived, kDone with `line` set, or a
  // protocol error with `error_message`.
  Step read_number_line(std::string_view error_message, std::string_view& line);
  void start_skipping();
  void finish_command();
  Step fail(std::string message);
  void compact();

  Limits limits_;
  ByteBuffer buffer_;
  size_t begin_ = 0;     // start of the command being parsed; bytes before it are consumed
  size_t pos_ = 0;       // next byte to parse
  size_t scan_ = 0;      // where the search for the current line's end resumes
  size_t reserved_ = 0;  // bytes handed out by prepare(), not yet committed
  State state_ = State::kStart;
  bool authenticated_ = true;

  // The multibulk command in progress.
  uint64_t args_left_ = 0;       // bulk arguments still to come
  uint64_t payload_left_ = 0;    // kBulkPayload: payload bytes still to come
  uint64_t request_bytes_ = 0;   // wire bytes of the command so far
  bool skipping_ = false;        // over a limit: arguments are discarded
  std::string too_big_message_;  // kTooBig error, chosen when skipping started
  struct Span {
    uint32_t offset;  // from begin_
    uint32_t length;
  };
  std::vector<Span> spans_;  // one per argument parsed so far

  // Output of the last next().
  std::vector<std::string_view> views_;
  std::string inline_scratch_;
  std::string error_;
  ParseResult result_;
};

/// Splits one inline line (without its LF) as Redis's sdssplitargs(), into
/// `storage` (argument bytes, concatenated) and `out` (views into it).
/// Returns false on unbalanced quotes. Exposed for tests.
bool split_inline_args(std::string_view line, std::string& storage,
                       std::vector<std::string_view>& out);

}  // namespace cset::resp
