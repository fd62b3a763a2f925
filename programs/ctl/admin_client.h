// edgerelayctl's side of the admin API: one HTTP/1.1 request to [admin] listen, with
// the configured bearer token. A daemon that does not answer is a clear message, not a
// socket error.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace edgerelay::ctl {

struct AdminResponse {
    unsigned status = 0;
    boost::json::value body;  // parsed JSON, or null when the body was not JSON
    std::string text;         // the raw body
    // The API's {"error": "..."} message, or the status line's meaning.
    std::string error() const;
};

// Exits with status 1 and a message when the daemon cannot be reached, or when the
// API refuses the token (401).
AdminResponse admin_request(const conf::Config& config, boost::beast::http::verb method, const std::string& target,
                            const std::string& body = {});

// The same, but nullopt when nothing answers at [admin] listen (a read-only command
// then does the work itself).
std::optional<AdminResponse> try_admin_request(const conf::Config& config, boost::beast::http::verb method,
                                               const std::string& target);

// Percent-encodes a query parameter or path segment (RFC 3986 unreserved kept).
std::string url_encode(std::string_view text);

}  // namespace edgerelay::ctl
