// Conversions between the consensus core's messages (raft/types.h) and their
// wire form (net/peer.proto).
//
// Guarantees:
// - Lossless: from_proto(to_proto(m)) equals m in every field, for every
//   Message the core can produce (tests/server/net_convert_test.cc).
// - Safe on hostile input: from_proto never trusts the peer. Out-of-range
//   enums, an undecodable or invariant-breaking snapshot configuration
//   (raft::check_configuration) answer Code::kCorrupt; nothing crashes.
//   A well-formed message can still be semantically wrong (a forged `from`);
//   the transport checks `from` against the handshake's node id.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "cset/status.h"
#include "net/peer.pb.h"
#include "raft/types.h"

namespace cset::net {

/// The peer protocol version sent in every Handshake. A node refuses a peer
/// whose version differs (there is only one so far).
inline constexpr uint32_t kProtocolVersion = 1;

/// Fills `out` (cleared first) with `message`. The snapshot metadata is left
/// out when it is the default value (see peer.proto).
void to_proto(const raft::Message& message, RaftMessage* out);

/// Errors: kCorrupt naming the bad field.
Result<raft::Message> from_proto(const RaftMessage& proto);

/// A PeerFrame carrying `message`.
PeerFrame make_raft_frame(const raft::Message& message);

/// Checks what every frame must satisfy before the transport delivers it: a
/// body is set, and a raft body converts (from_proto). Forward frames and
/// handshakes are checked by whoever reads them (the server).
/// Errors: kCorrupt.
Status check_frame(const PeerFrame& frame);

/// A short name for logs: "raft", "forward_request", ... or "empty".
const char* frame_kind(const PeerFrame& frame);

}  // namespace cset::net
