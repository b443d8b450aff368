// Shared by the crash test and its writer process: the data of an entry is a
// function of its index and term, so the parent can check every byte.
#pragma once

#include <string>

#include "raft/types.h"

namespace cset::storage::testing {

inline std::string crash_entry_data(raft::Index index, raft::Term term) {
  return std::to_string(index) + ":" + std::to_string(term) +
         std::string((index * 7919 + term) % 300, 'd');
}

}  // namespace cset::storage::testing
