// Size limits of the client protocol (SPEC.md "Errors", code TOOBIG).
//
// One struct for the whole layer: the parser (parser.h) enforces the framing
// limits before it allocates anything; the command parser (commands.h)
// enforces the key and member limits. csetd fills it from --max-key-bytes,
// --max-member-bytes and --max-request-bytes.
//
// Thread-safety: a plain value.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cset::resp {

struct Limits {
  /// A key longer than this answers TOOBIG (SPEC default 4 KiB).
  size_t max_key_bytes = 4 * 1024;
  /// A member longer than this answers TOOBIG (SPEC default 64 KiB).
  size_t max_member_bytes = 64 * 1024;
  /// A command whose wire frame (headers, payloads and CRLFs) is longer than
  /// this is discarded without being buffered and answers TOOBIG; the
  /// connection stays open (SPEC default 1.5 MiB).
  size_t max_request_bytes = 1536 * 1024;
  /// One bulk argument longer than this is discarded like an oversized
  /// request. 0 (the default), or anything above max_request_bytes, means
  /// max_request_bytes.
  size_t max_bulk_bytes = 0;
  /// A bulk length announced above this is a protocol error (the connection
  /// is closed) instead of being skipped: 512 MiB, Redis's proto-max-bulk-len.
  uint64_t max_skip_bulk_bytes = 512ull * 1024 * 1024;
  /// Arguments of one multibulk command; more is a protocol error
  /// ("invalid multibulk length"), as in Redis (1024 * 1024).
  uint64_t max_args = 1024 * 1024;
  /// Longest inline command line, as Redis's PROTO_INLINE_MAX_SIZE (64 KiB).
  size_t max_inline_bytes = 64 * 1024;
};

}  // namespace cset::resp
