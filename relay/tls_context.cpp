// STARTTLS server context: TLS 1.2+, the operator's certificate chain and key.
#include "relay/tls_context.h"

#include <stdexcept>

namespace edgerelay::relay {

namespace ssl = boost::asio::ssl;

std::unique_ptr<ssl::context> make_server_tls_context(const conf::ServerConfig& server) {
    if (server.tls_certificate.empty() || server.tls_private_key.empty()) return nullptr;
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(server.tls_certificate, ec);
    if (ec) throw std::runtime_error(server.tls_certificate + ": cannot use certificate: " + ec.message());
    ctx->use_private_key_file(server.tls_private_key, ssl::context::pem, ec);
    if (ec) throw std::runtime_error(server.tls_private_key + ": cannot use private key: " + ec.message());
    return ctx;
}

}  // namespace edgerelay::relay
