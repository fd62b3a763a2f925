// The delivery side of SMTP (RFC 5321 client): one connection to one address of a next
// hop, greeting, EHLO (HELO fallback), STARTTLS per the route's policy, then any number
// of transactions (connection reuse), each with PIPELINING and CHUNKING where offered.
// It reports what the server said; deciding what a reply means is the caller's job.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace edgerelay::relay {

// A reply from the remote server, or a local failure (code 0: connect refused,
// timeout, TLS failure, connection lost), which callers treat as temporary.
struct RemoteReply {
    int code = 0;
    std::string enhanced;  // "5.1.1" when the server gave one
    std::string text;      // the text of the last line (or of every line, joined by " ")
    bool permanent() const { return code >= 500; }
    bool positive() const { return code >= 200 && code < 400; }
    std::string line() const;  // "550 5.1.1 text", or the text alone for code 0
};

// Parses one complete reply ("250-a\r\n250 b\r\n"); used by the client and tests.
std::optional<RemoteReply> parse_remote_reply(std::string_view lines);

// The client sessions that are open (or connecting), so a daemon that stops can end
// them at once instead of waiting out RFC 5321's timeouts (up to 10 minutes for a
// stalled DATA). Their operations then fail as a lost connection.
class ClientSessions {
public:
    void abort_all();
    // For SmtpClientConnection::open: `abort` closes the session's socket while
    // `alive` lives.
    void add(std::weak_ptr<void> alive, std::function<void()> abort);

private:
    std::vector<std::pair<std::weak_ptr<void>, std::function<void()>>> live_;
};

struct ConnectOptions {
    std::string address;      // IP literal to connect to
    std::uint16_t port = 25;
    std::string host_name;    // the MX host name: SNI and the name `verify` checks
    conf::TlsPolicy tls = conf::TlsPolicy::may;
    std::string helo_name;    // our hostname
    std::chrono::milliseconds connect_timeout{30000};
    // RFC 5321 4.5.3.2 minimums by default; tests may shorten them.
    std::chrono::milliseconds command_timeout{std::chrono::minutes(5)};
    std::chrono::milliseconds data_timeout{std::chrono::minutes(10)};
    ClientSessions* sessions = nullptr;  // registers the session there when set
};

struct Transaction {
    std::string sender;                   // "" = null sender <>
    std::vector<std::string> recipients;
    std::string_view content;             // the spooled message, CRLF lines, not dot-stuffed
    bool eight_bit_mime = false;
    bool smtputf8 = false;
};

struct TransactionResult {
    // One reply per recipient, in order: the RCPT refusal, or the final reply to the
    // data (or the MAIL/DATA refusal that ended the transaction for everyone).
    std::vector<RemoteReply> recipient_replies;
    bool connection_reusable = false;     // RSET was accepted afterwards
};

class SmtpClientConnection {
public:
    // Connects, reads the greeting, EHLO (HELO when EHLO is refused), STARTTLS per
    // policy (`may`: when offered; `verify`: required, with certificate and host name
    // verification against the system CAs; failures are code 0 replies). On failure
    // returns nullptr and sets `failure` (greeting or EHLO refusal, or local error).
    static boost::asio::awaitable<std::unique_ptr<SmtpClientConnection>> open(
        boost::asio::any_io_executor executor, boost::asio::ssl::context& tls_context, const ConnectOptions& options,
        RemoteReply& failure);

    ~SmtpClientConnection();

    // One transaction. A message over the server's advertised SIZE, or needing
    // SMTPUTF8 the server lacks, is refused locally with a 5xx reply (5.3.4 / 5.6.7)
    // without sending it. Afterwards RSET keeps the connection for the next message.
    boost::asio::awaitable<TransactionResult> send(const Transaction& transaction);
    boost::asio::awaitable<void> quit();  // QUIT and close; never fails

    const ConnectOptions& options() const { return options_; }
    bool tls_active() const;
    bool usable() const;  // false after a local failure or a 421

private:
    struct Io;
    SmtpClientConnection(ConnectOptions options, std::unique_ptr<Io> io);
    ConnectOptions options_;
    std::unique_ptr<Io> io_;
};

// The client-side TLS context: TLS 1.2+, system CA paths (SSL_CERT_FILE/SSL_CERT_DIR
// are honoured, so tests can add a CA).
std::unique_ptr<boost::asio::ssl::context> make_client_tls_context();

}  // namespace edgerelay::relay
