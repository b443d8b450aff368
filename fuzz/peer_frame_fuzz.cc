// libFuzzer target: the peer frame decoder and the raft message conversion
// (net/frame.h, net/convert.h) on hostile bytes.
//
// Input layout: byte 0 selects the mode, the rest is the data.
//   mode & 0x80: the data is one PeerFrame payload, parsed directly (lets the
//                fuzzer explore protobuf structure without forging CRCs).
//   otherwise:   the data is a byte stream fed to a FrameDecoder in chunks of
//                1 + (mode & 0x3F) bytes.
// Every decoded frame goes through check_frame() and, for raft bodies,
// from_proto(); a message that converts must survive to_proto/from_proto
// unchanged, or the target traps.
//
// Built by fuzz/CMakeLists.txt under CSET_FUZZ (clang); the same entry point
// runs without libFuzzer in tests/server/net_fuzz_corpus_test.cc.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/convert.h"
#include "net/frame.h"

namespace {

using cset::net::FrameDecoder;
using cset::net::PeerFrame;

constexpr size_t kFuzzMaxFrameBytes = size_t{1} << 20;

bool same(const cset::raft::Message& a, const cset::raft::Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.commit == b.commit &&
         a.entries == b.entries && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.reject_hint_term == b.reject_hint_term && a.transfer == b.transfer &&
         a.context == b.context && a.snapshot_meta == b.snapshot_meta &&
         a.snapshot_offset == b.snapshot_offset && a.snapshot_chunk == b.snapshot_chunk &&
         a.snapshot_done == b.snapshot_done;
}

void check(const PeerFrame& frame) {
  (void)cset::net::check_frame(frame);
  (void)cset::net::frame_kind(frame);
  if (!frame.has_raft()) return;
  cset::Result<cset::raft::Message> m = cset::net::from_proto(frame.raft());
  if (!m.ok()) return;
  cset::Result<cset::raft::Message> again =
      cset::net::from_proto(cset::net::make_raft_frame(*m).raft());
  if (!again.ok() || !same(*m, *again)) __builtin_trap();
  // Re-framing what was decoded must decode to the same message.
  std::string bytes;
  if (!cset::net::append_frame(frame, kFuzzMaxFrameBytes * 2, &bytes).is_ok()) __builtin_trap();
  FrameDecoder decoder(kFuzzMaxFrameBytes * 2);
  decoder.feed(bytes);
  PeerFrame back;
  if (decoder.next(&back) != FrameDecoder::Next::kFrame || !back.has_raft()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode & 0x80) {
    PeerFrame frame;
    if (frame.ParseFromArray(input.data(), static_cast<int>(input.size()))) check(frame);
    return 0;
  }
  FrameDecoder decoder(kFuzzMaxFrameBytes);
  const size_t chunk = 1 + (mode & 0x3F);
  PeerFrame frame;
  for (size_t pos = 0; pos < input.size() && !decoder.failed(); pos += chunk) {
    decoder.feed(input.substr(pos, chunk));
    while (decoder.next(&frame) == FrameDecoder::Next::kFrame) check(frame);
    if (decoder.buffered_bytes() > input.size()) __builtin_trap();  // bounded memory
  }
  return 0;
}
