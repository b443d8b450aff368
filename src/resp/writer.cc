#include "resp/writer.h"

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>

namespace cset::resp {

std::string format_double(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::array<char, 64> text{};
  auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), value);
  assert(ec == std::errc());
  return std::string(text.data(), end);
}

void ReplyWriter::line(char type, std::string_view text) {
  out_->push_back(type);
  const size_t start = out_->size();
  out_->append(text);
  for (size_t i = start; i < out_->size(); ++i) {
    char& c = (*out_)[i];
    if (c == '\r' || c == '\n') c = ' ';
  }
  out_->append("\r\n");
}

void ReplyWriter::header(char type, uint64_t count) {
  std::array<char, 24> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), count);
  out_->push_back(type);
  out_->append(digits.data(), end);
  out_->append("\r\n");
}

void ReplyWriter::simple_string(std::string_view text) { line('+', text); }

void ReplyWriter::error(std::string_view text) {
  if (errors_ != nullptr) {
    std::string_view code = text.substr(0, text.find(' '));
    auto it = errors_->find(code);
    if (it == errors_->end()) it = errors_->emplace(std::string(code), 0).first;
    ++it->second;
  }
  line('-', text);
}

void ReplyWriter::error(const Status& status) {
  assert(!status.is_ok());
  error(status.to_string());
}

void ReplyWriter::integer(int64_t value) {
  std::array<char, 24> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
  out_->push_back(':');
  out_->append(digits.data(), end);
  out_->append("\r\n");
}

void ReplyWriter::bulk_string(std::string_view payload) {
  header('$', payload.size());
  out_->append(payload);
  out_->append("\r\n");
}

void ReplyWriter::null() { out_->append(protocol_ >= 3 ? "_\r\n" : "$-1\r\n"); }

void ReplyWriter::null_array() { out_->append(protocol_ >= 3 ? "_\r\n" : "*-1\r\n"); }

void ReplyWriter::array_header(size_t count) { header('*', count); }

void ReplyWriter::map_header(size_t pairs) {
  if (protocol_ >= 3) {
    header('%', pairs);
  } else {
    header('*', 2 * static_cast<uint64_t>(pairs));
  }
}

void ReplyWriter::set_header(size_t count) { header(protocol_ >= 3 ? '~' : '*', count); }

void ReplyWriter::boolean(bool value) {
  if (protocol_ >= 3) {
    out_->append(value ? "#t\r\n" : "#f\r\n");
  } else {
    integer(value ? 1 : 0);
  }
}

void ReplyWriter::double_value(double value) {
  const std::string text = format_double(value);
  if (protocol_ >= 3) {
    line(',', text);
  } else {
    bulk_string(text);
  }
}

void ReplyWriter::verbatim(std::string_view payload, std::string_view format) {
  assert(format.size() == 3);
  if (protocol_ < 3) {
    bulk_string(payload);
    return;
  }
  header('=', payload.size() + 4);
  out_->append(format);
  out_->push_back(':');
  out_->append(payload);
  out_->append("\r\n");
}

void ReplyWriter::bulk_array(std::span<const std::string> items) {
  array_header(items.size());
  for (const std::string& item : items) bulk_string(item);
}

void ReplyWriter::bulk_array(std::span<const std::string_view> items) {
  array_header(items.size());
  for (std::string_view item : items) bulk_string(item);
}

}  // namespace cset::resp
