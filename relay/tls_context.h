// The server-side TLS context for STARTTLS, from [server] tls_certificate/private_key.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "conf/config.h"

namespace edgerelay::relay {

// nullptr when no certificate is configured (STARTTLS is then not offered). Throws
// std::runtime_error naming the file when the certificate or key cannot be used.
std::unique_ptr<boost::asio::ssl::context> make_server_tls_context(const conf::ServerConfig& server);

}  // namespace edgerelay::relay
