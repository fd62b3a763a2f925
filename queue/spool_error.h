// Error codes of spool operations, usable as std::error_code on hot paths.
#pragma once

#include <system_error>

namespace edgerelay::queue {

enum class SpoolError {
    ok = 0,
    full = 1,       // LMDB map full: answer 452 4.3.1, keep what we have
    io = 2,         // the disk or LMDB failed otherwise
    not_found = 3,  // no such queue id
    corrupt = 4,    // a record that does not decode
    closed = 5,     // the writer is shutting down
};

const std::error_category& spool_category();
std::error_code make_error_code(SpoolError e);

}  // namespace edgerelay::queue

template <>
struct std::is_error_code_enum<edgerelay::queue::SpoolError> : std::true_type {};
