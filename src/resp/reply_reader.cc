#include "resp/reply_reader.h"

#include <charconv>
#include <cstring>
#include <optional>

#include "resp/text.h"

namespace cset::resp {

namespace {

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  // Reads the value at pos_; on kOk, pos_ is past it.
  ReadStatus read(Reply& out, int depth) {
    if (depth < 0) return ReadStatus::kMalformed;
    std::string_view line;
    if (ReadStatus s = read_line(line); s != ReadStatus::kOk) return s;
    const char type = line[0];
    const std::string_view body = line.substr(1);
    switch (type) {
      case '+':
        out.type = Reply::Type::kSimple;
        out.text = body;
        return ReadStatus::kOk;
      case '-':
        out.type = Reply::Type::kError;
        out.text = body;
        return ReadStatus::kOk;
      case ':': {
        std::optional<int64_t> v = parse_int64(body);
        if (!v) return ReadStatus::kMalformed;
        out.type = Reply::Type::kInteger;
        out.integer = *v;
        return ReadStatus::kOk;
      }
      case '_':
        if (!body.empty()) return ReadStatus::kMalformed;
        out.type = Reply::Type::kNull;
        return ReadStatus::kOk;
      case '#':
        if (body != "t" && body != "f") return ReadStatus::kMalformed;
        out.type = Reply::Type::kBoolean;
        out.integer = body == "t" ? 1 : 0;
        return ReadStatus::kOk;
      case ',':
        return read_double(body, out);
      case '$':
      case '=':
        return read_blob(type, body, out);
      case '*':
      case '%':
      case '~':
        return read_aggregate(type, body, out, depth);
      default:
        return ReadStatus::kMalformed;
    }
  }

  size_t pos() const { return pos_; }

 private:
  // A line of at least one byte ended by CRLF, without it.
  ReadStatus read_line(std::string_view& line) {
    if (pos_ >= in_.size()) return ReadStatus::kIncomplete;
    const void* cr = std::memchr(in_.data() + pos_, '\r', in_.size() - pos_);
    if (cr == nullptr) return ReadStatus::kIncomplete;
    const size_t end = static_cast<const char*>(cr) - in_.data();
    if (end + 1 >= in_.size()) return ReadStatus::kIncomplete;
    if (in_[end + 1] != '\n' || end == pos_) return ReadStatus::kMalformed;
    line = in_.substr(pos_, end - pos_);
    pos_ = end + 2;
    return ReadStatus::kOk;
  }

  ReadStatus read_double(std::string_view body, Reply& out) {
    out.type = Reply::Type::kDouble;
    out.text = body;
    if (body == "inf" || body == "-inf" || body == "nan") return ReadStatus::kOk;
    auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), out.number);
    if (ec != std::errc() || end != body.data() + body.size()) return ReadStatus::kMalformed;
    return ReadStatus::kOk;
  }

  ReadStatus read_blob(char type, std::string_view body, Reply& out) {
    std::optional<int64_t> length = parse_int64(body);
    if (!length || *length < -1) return ReadStatus::kMalformed;
    if (*length == -1) {
      if (type != '$') return ReadStatus::kMalformed;
      out.type = Reply::Type::kNull;
      return ReadStatus::kOk;
    }
    const uint64_t n = static_cast<uint64_t>(*length);
    if (in_.size() - pos_ < n + 2) return ReadStatus::kIncomplete;
    if (in_[pos_ + n] != '\r' || in_[pos_ + n + 1] != '\n') return ReadStatus::kMalformed;
    std::string_view payload = in_.substr(pos_, n);
    pos_ += n + 2;
    if (type == '$') {
      out.type = Reply::Type::kBulk;
      out.text = payload;
      return ReadStatus::kOk;
    }
    if (payload.size() < 4 || payload[3] != ':') return ReadStatus::kMalformed;
    out.type = Reply::Type::kVerbatim;
    out.format = payload.substr(0, 3);
    out.text = payload.substr(4);
    return ReadStatus::kOk;
  }

  ReadStatus read_aggregate(char type, std::string_view body, Reply& out, int depth) {
    std::optional<int64_t> count = parse_int64(body);
    if (!count || *count < -1) return ReadStatus::kMalformed;
    if (*count == -1) {
      if (type != '*') return ReadStatus::kMalformed;
      out.type = Reply::Type::kNull;
      return ReadStatus::kOk;
    }
    uint64_t items = static_cast<uint64_t>(*count);
    if (type == '%') items *= 2;
    // Every item takes at least 3 bytes: never trust a count the input cannot hold.
    if (items > (in_.size() - pos_) / 3) return ReadStatus::kIncomplete;
    out.type =
        type == '*' ? Reply::Type::kArray : (type == '%' ? Reply::Type::kMap : Reply::Type::kSet);
    out.elements.reserve(items);
    for (uint64_t i = 0; i < items; ++i) {
      out.elements.emplace_back();
      if (ReadStatus s = read(out.elements.back(), depth - 1); s != ReadStatus::kOk) return s;
    }
    return ReadStatus::kOk;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

ReadResult read_reply(std::string_view input, int max_depth) {
  ReadResult result;
  Reader reader(input);
  result.status = reader.read(result.reply, max_depth);
  if (result.status == ReadStatus::kOk) {
    result.consumed = reader.pos();
  } else {
    result.reply = Reply{};
  }
  return result;
}

}  // namespace cset::resp
