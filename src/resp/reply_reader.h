// A reader of RESP2/RESP3 replies: the client side of writer.h, for tests,
// the fuzz harness and clients (tools/cset may use it instead of hiredis).
//
// read_reply() decodes one complete reply from the start of a buffer. It
// treats its input as hostile: a truncated reply is kIncomplete (feed more
// and call again from the same start), anything malformed is kMalformed,
// nesting deeper than `max_depth` is kMalformed, and no length is trusted
// before its bytes are present (no allocation beyond the input's size).
// Pushes, attributes and big numbers are not read (nothing here sends them).
//
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cset::resp {

struct Reply {
  enum class Type : uint8_t {
    kSimple,    // +text
    kError,     // -text
    kInteger,   // :n
    kBulk,      // $n payload
    kNull,      // $-1, *-1 or _
    kArray,     // *n
    kMap,       // %n: elements hold 2n items, key then value
    kSet,       // ~n
    kBoolean,   // #t / #f
    kDouble,    // ,text (kept as text in `text`, value in `number`)
    kVerbatim,  // =n fmt:payload (`text` = payload, `format` = fmt)
  };
  Type type = Type::kNull;
  std::string text;
  std::string format;
  int64_t integer = 0;  // kInteger; kBoolean: 0 or 1
  double number = 0;
  std::vector<Reply> elements;
};

enum class ReadStatus : uint8_t { kOk, kIncomplete, kMalformed };

struct ReadResult {
  ReadStatus status = ReadStatus::kIncomplete;
  Reply reply;          // kOk
  size_t consumed = 0;  // kOk: bytes of the reply
};

ReadResult read_reply(std::string_view input, int max_depth = 32);

}  // namespace cset::resp
