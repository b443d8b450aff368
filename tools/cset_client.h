// The cset CLI's names for the client library (include/cset/client.h, library
// cset_client): endpoints, replies and commands. The failover rules and the
// client sessions live there, once, for the CLI and for library users.
#pragma once

#include "cset/client.h"

namespace cset::cli {

using client::Command;
using client::Endpoint;
using client::Idempotence;
using client::parse_endpoints;
using client::Reply;

}  // namespace cset::cli
