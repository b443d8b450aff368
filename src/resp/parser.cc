#include "resp/parser.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <optional>

#include "resp/text.h"

namespace cset::resp {

namespace {

// A decimal int64 has at most 20 characters; a count or length line longer
// than this without its CR cannot be valid, so it fails at once (Redis waits
// for 64 KiB first; the error is the same).
constexpr size_t kMaxNumberLine = 32;
// Redis's bounds before authentication (networking.c).
constexpr int64_t kUnauthenticatedMaxArgs = 10;
constexpr uint64_t kUnauthenticatedMaxBulk = 16384;
// A buffer left empty with more capacity than this is released.
constexpr size_t kShrinkCapacity = 256 * 1024;

constexpr std::string_view kInvalidMultibulk = "ERR Protocol error: invalid multibulk length";
constexpr std::string_view kInvalidBulk = "ERR Protocol error: invalid bulk length";

bool is_space(char c) {  // C isspace() in the "C" locale
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

char unescape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

}  // namespace

bool split_inline_args(std::string_view line, std::string& storage,
                       std::vector<std::string_view>& out) {
  storage.clear();
  out.clear();
  line = line.substr(0, line.find('\0'));  // C string semantics, as sdssplitargs
  // Unescaping never lengthens a token, so the views below stay valid.
  storage.reserve(line.size());
  const size_t n = line.size();
  auto at = [&](size_t k) { return k < n ? line[k] : '\0'; };
  size_t i = 0;
  while (true) {
    while (i < n && is_space(line[i])) ++i;
    if (i >= n) return true;
    const size_t start = storage.size();
    bool in_double = false;
    bool in_single = false;
    bool done = false;
    while (!done) {
      const char c = at(i);
      if (in_double) {
        if (c == '\\' && at(i + 1) == 'x' && is_hex(at(i + 2)) && is_hex(at(i + 3))) {
          storage.push_back(static_cast<char>(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          storage.push_back(unescape(at(i)));
        } else if (c == '"') {
          // A closing quote must be followed by a blank or the end.
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated quotes
        } else {
          storage.push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          storage.push_back('\'');
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          storage.push_back(c);
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            in_double = true;
            break;
          case '\'':
            in_single = true;
            break;
          default:
            storage.push_back(c);
            break;
        }
      }
      if (at(i) != '\0') ++i;
    }
    out.emplace_back(storage.data() + start, storage.size() - start);
  }
}

RequestParser::RequestParser(const Limits& limits) : limits_(limits) {
  if (limits_.max_bulk_bytes == 0 || limits_.max_bulk_bytes > limits_.max_request_bytes) {
    limits_.max_bulk_bytes = limits_.max_request_bytes;
  }
  // Argument offsets are kept as 32-bit values.
  assert(limits_.max_request_bytes < std::numeric_limits<uint32_t>::max());
}

void RequestParser::compact() {
  if (begin_ == 0) return;
  if (begin_ == buffer_.size()) {
    if (buffer_.capacity() > kShrinkCapacity) {
      buffer_.release();
    } else {
      buffer_.clear();
    }
  } else if (begin_ >= buffer_.size() - begin_) {
    // Moving costs at most the bytes already consumed: amortised O(1) a byte.
    buffer_.erase_front(begin_);
  } else {
    return;
  }
  pos_ -= begin_;
  scan_ = scan_ > begin_ ? scan_ - begin_ : 0;
  begin_ = 0;
}

void RequestParser::feed(std::string_view bytes) {
  assert(reserved_ == 0);
  if (state_ == State::kFailed) return;
  compact();
  buffer_.append(bytes);
}

std::span<char> RequestParser::prepare(size_t max_bytes) {
  assert(reserved_ == 0);
  compact();
  const size_t old_size = buffer_.size();
  buffer_.resize(old_size + max_bytes);
  reserved_ = max_bytes;
  return {buffer_.data() + old_size, max_bytes};
}

void RequestParser::commit(size_t bytes) {
  assert(bytes <= reserved_);
  buffer_.resize(buffer_.size() - reserved_ + std::min(bytes, reserved_));
  reserved_ = 0;
  if (state_ == State::kFailed) {
    buffer_.clear();
    begin_ = pos_ = scan_ = 0;
  }
}

ParseResult RequestParser::next() {
  assert(reserved_ == 0);
  result_ = ParseResult{};
  views_.clear();
  if (state_ == State::kFailed) {
    result_.status = ParseStatus::kProtocolError;
    result_.error = error_;
    return result_;
  }
  while (true) {
    Step step = Step::kNeedMore;
    switch (state_) {
      case State::kStart:
        step = parse_start();
        break;
      case State::kBulkHeader:
        step = parse_bulk_header();
        break;
      case State::kBulkPayload:
        step = parse_bulk_payload();
        break;
      case State::kFailed:
        step = Step::kDone;
        break;
    }
    if (step == Step::kContinue) continue;
    if (step == Step::kNeedMore) result_ = ParseResult{};
    return result_;
  }
}

RequestParser::Step RequestParser::fail(std::string message) {
  for (char& c : message) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  state_ = State::kFailed;
  error_ = std::move(message);
  buffer_.release();
  spans_ = {};
  begin_ = pos_ = scan_ = 0;
  result_ = ParseResult{};
  result_.status = ParseStatus::kProtocolError;
  result_.error = error_;
  return Step::kDone;
}

RequestParser::Step RequestParser::parse_start() {
  if (pos_ >= buffer_.size()) return Step::kNeedMore;
  assert(begin_ == pos_);
  if (buffer_[pos_] == '*') return parse_multibulk_header();
  return parse_inline();
}

RequestParser::Step RequestParser::read_number_line(std::string_view error_message,
                                                    std::string_view& line) {
  const size_t digits = pos_ + 1;  // after the '*' or '$'
  const size_t window_end = std::min(buffer_.size(), digits + kMaxNumberLine + 1);
  size_t from = std::max(scan_, digits);
  size_t cr = std::string_view::npos;
  if (from < window_end) {
    const void* hit = std::memchr(buffer_.data() + from, '\r', window_end - from);
    if (hit != nullptr) cr = static_cast<const char*>(hit) - buffer_.data();
  }
  if (cr == std::string_view::npos) {
    if (window_end == digits + kMaxNumberLine + 1) return fail(std::string(error_message));
    scan_ = window_end;
    return Step::kNeedMore;
  }
  scan_ = cr;  // found: resume here until the LF arrives
  if (cr + 1 >= buffer_.size()) return Step::kNeedMore;
  if (buffer_[cr + 1] != '\n') return fail(std::string(error_message));
  line = std::string_view(buffer_.data() + digits, cr - digits);
  return Step::kDone;
}

RequestParser::Step RequestParser::parse_multibulk_header() {
  std::string_view line;
  Step step = read_number_line(kInvalidMultibulk, line);
  if (step != Step::kDone || state_ == State::kFailed) return step;
  std::optional<int64_t> count = parse_int64(line);
  if (!count || (*count > 0 && static_cast<uint64_t>(*count) > limits_.max_args)) {
    return fail(std::string(kInvalidMultibulk));
  }
  if (!authenticated_ && *count > kUnauthenticatedMaxArgs) {
    return fail("ERR Protocol error: unauthenticated multibulk length");
  }
  const size_t header_bytes = line.size() + 3;
  pos_ += header_bytes;
  scan_ = pos_;
  if (*count <= 0) {  // "*0" and "*-1" are no command (Redis skips them)
    begin_ = pos_;
    return Step::kContinue;
  }
  request_bytes_ = header_bytes;
  args_left_ = static_cast<uint64_t>(*count);
  skipping_ = false;
  spans_.clear();
  spans_.reserve(std::min<uint64_t>(args_left_, 1024));
  if (request_bytes_ > limits_.max_request_bytes) start_skipping();
  state_ = State::kBulkHeader;
  return Step::kContinue;
}

void RequestParser::start_skipping() {
  skipping_ = true;
  spans_.clear();
  begin_ = pos_;  // nothing before this is needed any more
  too_big_message_ =
      "TOOBIG request exceeds " + std::to_string(limits_.max_request_bytes) + " bytes";
}

RequestParser::Step RequestParser::parse_bulk_header() {
  if (pos_ >= buffer_.size()) return Step::kNeedMore;
  if (buffer_[pos_] != '$') {
    return fail(std::string("ERR Protocol error: expected '$', got '") + buffer_[pos_] + "'");
  }
  std::string_view line;
  Step step = read_number_line(kInvalidBulk, line);
  if (step != Step::kDone || state_ == State::kFailed) return step;
  std::optional<int64_t> length = parse_int64(line);
  if (!length || *length < 0 || static_cast<uint64_t>(*length) > limits_.max_skip_bulk_bytes) {
    return fail(std::string(kInvalidBulk));
  }
  const uint64_t payload = static_cast<uint64_t>(*length);
  if (!authenticated_ && payload > kUnauthenticatedMaxBulk) {
    return fail("ERR Protocol error: unauthenticated bulk length");
  }
  const size_t header_bytes = line.size() + 3;
  pos_ += header_bytes;
  scan_ = pos_;
  request_bytes_ += header_bytes;
  if (!skipping_) {
    if (payload > limits_.max_bulk_bytes) {
      start_skipping();
      if (limits_.max_bulk_bytes < limits_.max_request_bytes) {
        too_big_message_ =
            "TOOBIG argument exceeds " + std::to_string(limits_.max_bulk_bytes) + " bytes";
      }
    } else if (request_bytes_ + payload + 2 > limits_.max_request_bytes) {
      start_skipping();
    }
  }
  if (skipping_) begin_ = pos_;
  payload_left_ = payload;
  state_ = State::kBulkPayload;
  return Step::kContinue;
}

RequestParser::Step RequestParser::parse_bulk_payload() {
  if (skipping_) {
    // Discard the payload as it arrives; only the CRLF must be seen whole.
    const uint64_t available = buffer_.size() - pos_;
    const uint64_t take = std::min(available, payload_left_);
    pos_ += take;
    payload_left_ -= take;
    request_bytes_ += take;
    begin_ = pos_;
    if (payload_left_ > 0) return Step::kNeedMore;
    if (buffer_.size() - pos_ < 2) return Step::kNeedMore;
  } else if (buffer_.size() - pos_ < payload_left_ + 2) {
    return Step::kNeedMore;
  }
  const size_t crlf = pos_ + (skipping_ ? 0 : payload_left_);
  if (buffer_[crlf] != '\r' || buffer_[crlf + 1] != '\n') {
    return fail("ERR Protocol error: bulk payload not followed by CRLF");
  }
  if (!skipping_) {
    spans_.push_back({static_cast<uint32_t>(pos_ - begin_), static_cast<uint32_t>(payload_left_)});
    request_bytes_ += payload_left_;
  }
  pos_ = crlf + 2;
  request_bytes_ += 2;
  scan_ = pos_;
  if (skipping_) begin_ = pos_;
  if (--args_left_ == 0) {
    finish_command();
    return Step::kDone;
  }
  state_ = State::kBulkHeader;
  return Step::kContinue;
}

void RequestParser::finish_command() {
  state_ = State::kStart;
  result_ = ParseResult{};
  if (skipping_) {
    skipping_ = false;
    result_.status = ParseStatus::kTooBig;
    result_.error = too_big_message_;
  } else {
    views_.reserve(spans_.size());
    for (const Span& span : spans_) {
      views_.emplace_back(buffer_.data() + begin_ + span.offset, span.length);
    }
    result_.status = ParseStatus::kCommand;
    result_.args = views_;
  }
  spans_.clear();
  begin_ = pos_;
}

RequestParser::Step RequestParser::parse_inline() {
  // The LF may sit at most max_inline_bytes after the line's start.
  const size_t window_end = std::min(buffer_.size(), pos_ + limits_.max_inline_bytes + 1);
  const size_t from = std::max(scan_, pos_);
  size_t lf = std::string_view::npos;
  if (from < window_end) {
    const void* hit = std::memchr(buffer_.data() + from, '\n', window_end - from);
    if (hit != nullptr) lf = static_cast<const char*>(hit) - buffer_.data();
  }
  if (lf == std::string_view::npos) {
    if (window_end == pos_ + limits_.max_inline_bytes + 1) {
      return fail("ERR Protocol error: too big inline request");
    }
    scan_ = window_end;
    return Step::kNeedMore;
  }
  std::string_view line(buffer_.data() + pos_, lf - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ = lf + 1;
  scan_ = pos_;
  begin_ = pos_;
  if (!split_inline_args(line, inline_scratch_, views_)) {
    return fail("ERR Protocol error: unbalanced quotes in request");
  }
  if (views_.empty()) return Step::kContinue;  // an empty line is no command
  result_ = ParseResult{};
  result_.status = ParseStatus::kCommand;
  result_.args = views_;
  result_.is_inline = true;
  return Step::kDone;
}

}  // namespace cset::resp
