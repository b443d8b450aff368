#include "cset/status.h"

namespace cset {

std::string_view code_word(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNoQuorum:
      return "NOQUORUM";
    case Code::kTimeout:
      return "TIMEOUT";
    case Code::kNoSpace:
      return "NOSPACE";
    case Code::kBusy:
      return "BUSY";
    case Code::kRemoved:
      return "REMOVED";
    case Code::kTooBig:
      return "TOOBIG";
    case Code::kExists:
      return "EXISTS";
    case Code::kNoAuth:
      return "NOAUTH";
    case Code::kWrongPass:
      return "WRONGPASS";
    case Code::kSessionExpired:
      return "SESSIONEXPIRED";
    case Code::kNoProto:
      return "NOPROTO";
    default:
      return "ERR";
  }
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string out(code_word(code_));
  if (!message_.empty()) {
    out += ' ';
    out += message_;
  }
  return out;
}

}  // namespace cset
