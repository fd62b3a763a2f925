// SMTP delivery client (RFC 5321 with RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 3207
// STARTTLS, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8): one connection to one
// address, reporting exactly what the server said. It decides nothing about delivery.
#include "relay/smtp_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>

namespace edgerelay::relay {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kMaxReplyLine = 4096;  // RFC 5321 4.5.3.1.5 says 512; be lenient
constexpr std::size_t kMaxReplyLines = 100;
constexpr std::size_t kReadChunk = 4096;
constexpr std::size_t kChunkSize = 1 << 20;   // BDAT chunk, and the unit of data-write progress
constexpr std::chrono::milliseconds kQuitTimeout{5000};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool ascii_iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return ascii_upper(x) == ascii_upper(y); });
}

// RFC 3463: class "." subject "." detail, class 2/4/5, 1-3 digits each, then a space or
// the end of the line. Returns its length, 0 when the text does not start with one.
std::size_t enhanced_code_length(std::string_view text) {
    if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.') return 0;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        const std::size_t start = i;
        while (i < text.size() && is_digit(text[i]) && i - start < 4) ++i;
        if (i == start || i - start > 3) return 0;
        if (part == 0) {
            if (i >= text.size() || text[i] != '.') return 0;
            ++i;
        }
    }
    if (i < text.size() && text[i] != ' ') return 0;
    return i;
}

RemoteReply local_reply(int code, std::string enhanced, std::string text) {
    RemoteReply r;
    r.code = code;
    r.enhanced = std::move(enhanced);
    r.text = std::move(text);
    return r;
}

RemoteReply local_failure(std::string text) { return local_reply(0, {}, std::move(text)); }

bool mail_accepted(const RemoteReply& reply) { return reply.code / 100 == 2; }

bool has_line_break(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// What the EHLO reply offered (RFC 5321 4.1.1.1: keywords are case-insensitive).
struct Capabilities {
    bool esmtp = false;
    bool pipelining = false;
    bool size = false;
    std::uint64_t size_limit = 0;  // 0: none announced
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool chunking = false;
    bool starttls = false;
};

Capabilities parse_capabilities(std::string_view raw) {
    Capabilities caps;
    caps.esmtp = true;
    bool first = true;
    while (!raw.empty()) {
        const std::size_t nl = raw.find('\n');
        std::string_view line = raw.substr(0, nl);
        raw.remove_prefix(nl == std::string_view::npos ? raw.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (first) {  // the greeting line names the server, not an extension
            first = false;
            continue;
        }
        if (line.size() <= 4) continue;
        std::string_view rest = line.substr(4);
        const std::size_t space = rest.find(' ');
        const std::string_view keyword = rest.substr(0, space);
        const std::string_view param = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
        if (ascii_iequals(keyword, "PIPELINING")) caps.pipelining = true;
        else if (ascii_iequals(keyword, "8BITMIME")) caps.eight_bit_mime = true;
        else if (ascii_iequals(keyword, "SMTPUTF8")) caps.smtputf8 = true;
        else if (ascii_iequals(keyword, "CHUNKING")) caps.chunking = true;
        else if (ascii_iequals(keyword, "STARTTLS")) caps.starttls = true;
        else if (ascii_iequals(keyword, "SIZE")) {
            caps.size = true;
            std::uint64_t limit = 0;
            const auto [end, ec] = std::from_chars(param.data(), param.data() + param.size(), limit);
            // No number, or one too large to matter: no limit we must respect.
            caps.size_limit = ec == std::errc() && end == param.data() + param.size() ? limit : 0;
        }
    }
    return caps;
}

// The message as DATA sends it (RFC 5321 4.5.2): a gather list over `content` with a
// "." inserted before every line that starts with one, CRLF added when missing, and the
// terminating ".". Nothing of the content is copied.
std::vector<asio::const_buffer> dot_stuffed(std::string_view content) {
    static constexpr std::string_view dot = ".";
    static constexpr std::string_view crlf = "\r\n";
    static constexpr std::string_view end = ".\r\n";
    std::vector<asio::const_buffer> buffers;
    std::size_t start = 0;
    std::size_t pos = content.starts_with('.') ? 0 : content.find("\n.");
    while (pos != std::string_view::npos) {
        const std::size_t dot_at = content[pos] == '.' ? pos : pos + 1;
        if (dot_at > start) buffers.emplace_back(content.data() + start, dot_at - start);
        buffers.emplace_back(dot.data(), dot.size());
        start = dot_at;
        pos = content.find("\n.", dot_at);
    }
    if (content.size() > start) buffers.emplace_back(content.data() + start, content.size() - start);
    if (!content.empty() && !content.ends_with("\r\n")) buffers.emplace_back(crlf.data(), crlf.size());
    buffers.emplace_back(end.data(), end.size());
    return buffers;
}

// Splits a gather list into pieces of about kChunkSize octets, so that a deadline can
// mean "no progress for that long" rather than "the whole message within that long".
std::vector<std::vector<asio::const_buffer>> in_pieces(const std::vector<asio::const_buffer>& buffers) {
    std::vector<std::vector<asio::const_buffer>> pieces(1);
    std::size_t filled = 0;
    for (asio::const_buffer b : buffers) {
        while (b.size() > 0) {
            const std::size_t take = std::min(b.size(), kChunkSize - filled);
            pieces.back().emplace_back(b.data(), take);
            b += take;
            filled += take;
            if (filled == kChunkSize) {
                pieces.emplace_back();
                filled = 0;
            }
        }
    }
    if (pieces.back().empty()) pieces.pop_back();
    return pieces;
}

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string tls_error_text(const boost::system::error_code& ec, SSL* ssl) {
    std::string text = "TLS handshake failed: " + ec.message();
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) text += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    return text;
}

}  // namespace

std::string RemoteReply::line() const {
    if (code == 0) return text;
    std::string out = std::to_string(code);
    if (!enhanced.empty()) out += " " + enhanced;
    if (!text.empty()) out += " " + text;
    return out;
}

// Every line must carry the same code, "-" after it on all but the last. The text is
// every line's text joined by " ", each without the enhanced code the first line gave.
std::optional<RemoteReply> parse_remote_reply(std::string_view lines) {
    RemoteReply reply;
    bool finished = false;
    bool first = true;
    while (!lines.empty()) {
        if (finished) return std::nullopt;  // something after the last line
        const std::size_t nl = lines.find('\n');
        std::string_view line = lines.substr(0, nl);
        lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) || !is_digit(line[2]))
            return std::nullopt;
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (!first && code != reply.code) return std::nullopt;
        if (line.size() > 3 && line[3] != ' ' && line[3] != '-') return std::nullopt;
        finished = line.size() == 3 || line[3] == ' ';
        std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
        if (first) {
            reply.code = code;
            const std::size_t n = enhanced_code_length(text);
            reply.enhanced = std::string(text.substr(0, n));
            text.remove_prefix(n);
        } else if (!reply.enhanced.empty() && text.starts_with(reply.enhanced) &&
                   enhanced_code_length(text) == reply.enhanced.size()) {
            text.remove_prefix(reply.enhanced.size());
        }
        while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
        if (!text.empty()) {
            if (!reply.text.empty()) reply.text += ' ';
            reply.text += text;
        }
        first = false;
    }
    if (!finished) return std::nullopt;
    return reply;
}

// The socket, the TLS layer once STARTTLS succeeded, the read buffer and the deadline.
// A deadline is one timer whose handler cancels the pending I/O; the handler holds a
// shared Watch so that it never touches a connection destroyed meanwhile, and a
// generation so that a wake-up meant for an earlier operation cancels nothing.
struct SmtpClientConnection::Io {
    struct Watch {
        tcp::socket* socket = nullptr;
        std::uint64_t generation = 0;
        bool fired = false;
    };

    explicit Io(const asio::any_io_executor& executor)
        : socket(executor), timer(executor), watch(std::make_shared<Watch>()) {
        watch->socket = &socket;
    }
    ~Io() {
        watch->socket = nullptr;
        close();
    }

    tcp::socket socket;
    std::optional<ssl::stream<tcp::socket&>> tls;
    asio::steady_timer timer;
    std::shared_ptr<Watch> watch;
    std::string in;
    std::string raw_reply;  // the last reply as read, for the EHLO keywords
    Capabilities caps;
    bool broken = false;    // timed out, lost, a 421 or a protocol error: no more commands

    void arm(std::chrono::milliseconds timeout) {
        ++watch->generation;
        watch->fired = false;
        timer.expires_after(timeout);
        timer.async_wait([w = watch, generation = watch->generation](const boost::system::error_code& ec) {
            if (ec || !w->socket || w->generation != generation) return;
            w->fired = true;
            boost::system::error_code ignored;
            w->socket->cancel(ignored);
        });
    }

    // True when the deadline fired during the operation just finished.
    bool disarm() {
        ++watch->generation;
        timer.cancel();
        return watch->fired;
    }

    void close() {
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        timer.cancel();
    }

    RemoteReply fail(std::string text) {
        broken = true;
        return local_failure(std::move(text));
    }

    template <class Buffers>
    awaitable<boost::system::error_code> write_raw(const Buffers& buffers) {
        if (tls) {
            auto [ec, n] = co_await asio::async_write(*tls, buffers, as_tuple_awaitable);
            co_return ec;
        }
        auto [ec, n] = co_await asio::async_write(socket, buffers, as_tuple_awaitable);
        co_return ec;
    }

    // Writes within `timeout`; on failure the connection is broken and the reply says why.
    template <class Buffers>
    awaitable<std::optional<RemoteReply>> write(const Buffers& buffers, std::chrono::milliseconds timeout,
                                                std::string_view what) {
        if (broken) co_return local_failure("connection not usable");
        arm(timeout);
        const boost::system::error_code ec = co_await write_raw(buffers);
        const bool timed_out = disarm();
        if (timed_out) co_return fail("timeout sending " + std::string(what));
        if (ec) co_return fail("connection lost sending " + std::string(what) + ": " + ec.message());
        co_return std::nullopt;
    }

    awaitable<std::optional<RemoteReply>> write_text(std::string_view text, std::chrono::milliseconds timeout,
                                                     std::string_view what) {
        co_return co_await write(asio::buffer(text), timeout, what);
    }

    awaitable<std::size_t> read_some(std::size_t old, boost::system::error_code& ec) {
        in.resize(old + kReadChunk);
        if (tls) {
            auto [e, n] = co_await tls->async_read_some(asio::buffer(in.data() + old, kReadChunk), as_tuple_awaitable);
            ec = e;
            co_return n;
        }
        auto [e, n] = co_await socket.async_read_some(asio::buffer(in.data() + old, kReadChunk), as_tuple_awaitable);
        ec = e;
        co_return n;
    }

    // One complete reply (multi-line "250-..." continuations), within `timeout` overall.
    // `after` names the command for the code-0 failures: "timeout after RCPT TO".
    awaitable<RemoteReply> read_reply(std::chrono::milliseconds timeout, std::string_view after) {
        if (broken) co_return local_failure("connection not usable");
        std::size_t pos = 0;  // start of the line being looked at
        std::size_t lines = 0;
        for (;;) {
            const std::size_t nl = in.find('\n', pos);
            if (nl != std::string::npos) {
                if (nl - pos + 1 > kMaxReplyLine) co_return fail("reply line too long after " + std::string(after));
                ++lines;
                const bool last = nl - pos < 4 || in[pos + 3] != '-';
                pos = nl + 1;
                if (last) break;
                if (lines >= kMaxReplyLines) co_return fail("reply too long after " + std::string(after));
                continue;
            }
            if (in.size() - pos > kMaxReplyLine) co_return fail("reply line too long after " + std::string(after));
            const std::size_t old = in.size();
            boost::system::error_code ec;
            arm(timeout);
            const std::size_t n = co_await read_some(old, ec);
            const bool timed_out = disarm();
            in.resize(old + n);
            if (timed_out) co_return fail("timeout after " + std::string(after));
            if (ec) co_return fail("connection lost after " + std::string(after));
        }
        raw_reply.assign(in, 0, pos);
        in.erase(0, pos);
        auto reply = parse_remote_reply(raw_reply);
        if (!reply) co_return fail("malformed reply after " + std::string(after));
        if (reply->code == 421) broken = true;  // RFC 5321 3.8: the server is closing
        co_return std::move(*reply);
    }

    awaitable<RemoteReply> command(std::string line, std::chrono::milliseconds timeout, std::string_view what) {
        line += "\r\n";
        if (auto failure = co_await write_text(line, timeout, what); failure) co_return std::move(*failure);
        co_return co_await read_reply(timeout, what);
    }

    // RSET after a transaction; its 250 means the connection can carry the next one.
    awaitable<bool> rset(std::chrono::milliseconds timeout) {
        RemoteReply reply = co_await command("RSET", timeout, "RSET");
        co_return reply.code == 250 && !broken;
    }

    // EHLO, or HELO when EHLO gets a 5xx (RFC 5321 3.2); a non-250 reply ends the attempt.
    awaitable<std::optional<RemoteReply>> greet(const ConnectOptions& options) {
        RemoteReply ehlo = co_await command("EHLO " + options.helo_name, options.command_timeout, "EHLO");
        if (ehlo.code == 250) {
            caps = parse_capabilities(raw_reply);
            co_return std::nullopt;
        }
        if (ehlo.code < 500 || broken) co_return ehlo;
        RemoteReply helo = co_await command("HELO " + options.helo_name, options.command_timeout, "HELO");
        if (helo.code != 250) co_return helo;
        caps = Capabilities{};
        co_return std::nullopt;
    }

    // Everything after the greeting: EHLO, STARTTLS per policy, EHLO again under TLS.
    // Returns the reason when the connection cannot be used.
    awaitable<std::optional<RemoteReply>> establish(const ConnectOptions& options, ssl::context& tls_context);
};

SmtpClientConnection::SmtpClientConnection(ConnectOptions options, std::unique_ptr<Io> io)
    : options_(std::move(options)), io_(std::move(io)) {}

void ClientSessions::add(std::weak_ptr<void> alive, std::function<void()> abort) {
    // Forget ended sessions now and then, so the list stays about as long as the open ones.
    if (live_.size() >= 64 && (live_.size() & (live_.size() - 1)) == 0)
        std::erase_if(live_, [](const auto& entry) { return entry.first.expired(); });
    live_.emplace_back(std::move(alive), std::move(abort));
}

void ClientSessions::abort_all() {
    auto live = std::move(live_);
    live_.clear();
    for (auto& [alive, abort] : live)
        if (!alive.expired()) abort();
}

SmtpClientConnection::~SmtpClientConnection() = default;

bool SmtpClientConnection::tls_active() const { return io_ && io_->tls.has_value(); }

bool SmtpClientConnection::usable() const { return io_ && !io_->broken && io_->socket.is_open(); }

awaitable<std::unique_ptr<SmtpClientConnection>> SmtpClientConnection::open(asio::any_io_executor executor,
                                                                               ssl::context& tls_context,
                                                                               const ConnectOptions& options,
                                                                               RemoteReply& failure) {
    const std::string peer = options.address + ":" + std::to_string(options.port);
    if (options.tls == conf::TlsPolicy::verify && options.host_name.empty()) {
        failure = local_failure("no host name to verify the certificate against");
        co_return nullptr;
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options.address, ec);
    if (ec) {
        failure = local_failure("invalid address " + options.address);
        co_return nullptr;
    }
    auto io = std::make_unique<Io>(executor);
    if (options.sessions)
        options.sessions->add(io->watch, [watch = std::weak_ptr<Io::Watch>(io->watch)] {
            if (auto w = watch.lock(); w && w->socket) {
                boost::system::error_code ignored;
                w->socket->close(ignored);
            }
        });
    io->arm(options.connect_timeout);
    auto [connect_ec] = co_await io->socket.async_connect(tcp::endpoint(address, options.port), as_tuple_awaitable);
    const bool connect_timed_out = io->disarm();
    if (connect_timed_out) {
        failure = local_failure("timeout connecting to " + peer);
        co_return nullptr;
    }
    if (connect_ec) {
        failure = local_failure("connect to " + peer + " failed: " + connect_ec.message());
        co_return nullptr;
    }
    boost::system::error_code ignored;
    io->socket.set_option(tcp::no_delay(true), ignored);

    RemoteReply greeting = co_await io->read_reply(options.command_timeout, "connect");
    if (greeting.code != 220) {
        failure = std::move(greeting);
        co_return nullptr;  // RFC 5321 3.1: a 554 greeting means "go away"; just close
    }
    std::unique_ptr<SmtpClientConnection> connection(new SmtpClientConnection(options, std::move(io)));
    auto refused = co_await connection->io_->establish(options, tls_context);
    if (!refused) co_return connection;
    failure = std::move(*refused);
    co_await connection->quit();  // QUIT when the dialogue is still intact, then close
    co_return nullptr;
}

awaitable<std::optional<RemoteReply>> SmtpClientConnection::Io::establish(const ConnectOptions& options,
                                                                          ssl::context& tls_context) {
    if (auto refused = co_await greet(options); refused) co_return refused;
    if (options.tls == conf::TlsPolicy::none) co_return std::nullopt;
    if (!caps.starttls) {
        if (options.tls == conf::TlsPolicy::verify) co_return local_failure("STARTTLS not offered");
        co_return std::nullopt;
    }
    RemoteReply starttls = co_await command("STARTTLS", options.command_timeout, "STARTTLS");
    if (starttls.code != 220) {
        // `may` is opportunistic: a 454 (RFC 3207 4) leaves a working plaintext session.
        if (options.tls == conf::TlsPolicy::may && !broken) co_return std::nullopt;
        co_return starttls;
    }
    // RFC 3207 4.2 / CVE-2011-0411: nothing the server sent before the handshake counts.
    in.clear();
    tls.emplace(socket, tls_context);
    SSL* ssl = tls->native_handle();
    std::string host = options.host_name;
    if (host.ends_with('.')) host.pop_back();
    const bool host_is_ip = is_ip_literal(host);
    if (!host.empty() && !host_is_ip) SSL_set_tlsext_host_name(ssl, host.c_str());  // RFC 6066 3: names only
    if (options.tls == conf::TlsPolicy::verify) {
        tls->set_verify_mode(ssl::verify_peer);
        if (host_is_ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
        else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            SSL_set1_host(ssl, host.c_str());
        }
    } else {
        tls->set_verify_mode(ssl::verify_none);  // RFC 7435: encryption without authentication
    }
    arm(options.command_timeout);
    auto [ec] = co_await tls->async_handshake(ssl::stream_base::client, as_tuple_awaitable);
    const bool timed_out = disarm();
    if (timed_out) co_return fail("timeout in TLS handshake");
    if (ec) co_return fail(tls_error_text(ec, ssl));
    // RFC 3207 4.2: forget what was learnt before TLS and ask again.
    caps = Capabilities{};
    co_return co_await greet(options);
}

awaitable<TransactionResult> SmtpClientConnection::send(const Transaction& t) {
    Io& io = *io_;
    const ConnectOptions& o = options_;
    const std::size_t n = t.recipients.size();
    TransactionResult result;
    result.recipient_replies.resize(n);
    auto everyone = [&](const RemoteReply& reply) {
        std::fill(result.recipient_replies.begin(), result.recipient_replies.end(), reply);
        result.connection_reusable = usable();
        return result;
    };
    if (!usable()) co_return everyone(local_failure("connection not usable"));
    if (n == 0) co_return everyone(RemoteReply{});
    // Refusals decided here, before a byte is sent, keep the connection as it was.
    if (t.smtputf8 && !io.caps.smtputf8)
        co_return everyone(local_reply(553, "5.6.7", "server does not support SMTPUTF8"));
    if (io.caps.size_limit != 0 && t.content.size() > io.caps.size_limit)
        co_return everyone(local_reply(552, "5.3.4", "message too big for the server"));
    if (has_line_break(t.sender)) co_return everyone(local_reply(553, "5.1.7", "line break in the sender address"));

    enum class State { pending, skipped, refused, accepted };
    std::vector<State> state(n, State::pending);
    for (std::size_t i = 0; i < n; ++i) {
        if (has_line_break(t.recipients[i])) {
            state[i] = State::skipped;
            result.recipient_replies[i] = local_reply(553, "5.1.3", "line break in the recipient address");
        }
    }
    // A failure that ends the transaction: every recipient not already refused gets it.
    auto end_all = [&](const RemoteReply& reply) {
        for (std::size_t i = 0; i < n; ++i)
            if (state[i] == State::pending || state[i] == State::accepted) result.recipient_replies[i] = reply;
        result.connection_reusable = false;
        return result;
    };

    std::string mail = "MAIL FROM:<" + t.sender + ">";
    if (io.caps.size) mail += " SIZE=" + std::to_string(t.content.size());
    // Without 8BITMIME the body goes as is, as Postfix does (RFC 6152 leaves conversion to us).
    if (t.eight_bit_mime && io.caps.eight_bit_mime) mail += " BODY=8BITMIME";
    if (t.smtputf8) mail += " SMTPUTF8";
    std::vector<std::string> rcpts(n);
    for (std::size_t i = 0; i < n; ++i)
        if (state[i] == State::pending) rcpts[i] = "RCPT TO:<" + t.recipients[i] + ">";
    const bool chunking = io.caps.chunking;
    RemoteReply mail_reply;
    bool data_sent = false;  // DATA went out pipelined
    RemoteReply data_reply;

    if (io.caps.pipelining) {
        // RFC 2920 3.1: MAIL, every RCPT and DATA in one write, then the replies in order.
        std::string batch = mail + "\r\n";
        for (std::size_t i = 0; i < n; ++i)
            if (state[i] == State::pending) batch += rcpts[i] + "\r\n";
        if (!chunking) batch += "DATA\r\n";
        if (auto failure = co_await io.write_text(batch, o.command_timeout, "MAIL FROM"); failure)
            co_return end_all(*failure);
        mail_reply = co_await io.read_reply(o.command_timeout, "MAIL FROM");
        if (mail_reply.code == 0 || mail_reply.code == 421) co_return end_all(mail_reply);
        for (std::size_t i = 0; i < n; ++i) {
            if (state[i] != State::pending) continue;
            RemoteReply reply = co_await io.read_reply(o.command_timeout, "RCPT TO");
            if (reply.code == 0 || reply.code == 421) co_return end_all(reply);
            if (!mail_accepted(mail_reply)) continue;
            state[i] = reply.code / 100 == 2 ? State::accepted : State::refused;
            result.recipient_replies[i] = std::move(reply);
        }
        if (!chunking) {
            data_reply = co_await io.read_reply(o.command_timeout, "DATA");
            if (data_reply.code == 0 || data_reply.code == 421) co_return end_all(data_reply);
            data_sent = true;
        }
        if (!mail_accepted(mail_reply)) {
            for (std::size_t i = 0; i < n; ++i)
                if (state[i] == State::pending) result.recipient_replies[i] = mail_reply;
        }
    } else {
        mail_reply = co_await io.command(mail, o.command_timeout, "MAIL FROM");
        if (mail_reply.code == 0 || mail_reply.code == 421) co_return end_all(mail_reply);
        if (!mail_accepted(mail_reply)) {
            for (std::size_t i = 0; i < n; ++i)
                if (state[i] == State::pending) result.recipient_replies[i] = mail_reply;
            result.connection_reusable = co_await io.rset(o.command_timeout);
            co_return result;
        }
        for (std::size_t i = 0; i < n; ++i) {
            if (state[i] != State::pending) continue;
            RemoteReply reply = co_await io.command(rcpts[i], o.command_timeout, "RCPT TO");
            if (reply.code == 0 || reply.code == 421) co_return end_all(reply);
            state[i] = reply.code / 100 == 2 ? State::accepted : State::refused;
            result.recipient_replies[i] = std::move(reply);
        }
    }
    const bool any_accepted = std::find(state.begin(), state.end(), State::accepted) != state.end();
    if (!any_accepted) {
        if (data_sent && data_reply.code == 354) {
            // A server that said 354 with no recipient (RFC 2920 3.1) gets an empty message.
            RemoteReply ignored = co_await io.command(".", o.data_timeout, "end of data");
            if (ignored.code == 0 || ignored.code == 421) co_return end_all(ignored);
        }
        result.connection_reusable = co_await io.rset(o.command_timeout);
        co_return result;
    }

    RemoteReply final_reply;
    if (chunking) {
        // RFC 3030: BDAT <size> [LAST] and exactly that many octets, no dot-stuffing.
        std::size_t offset = 0;
        do {
            const std::size_t size = std::min(kChunkSize, t.content.size() - offset);
            const bool last = offset + size == t.content.size();
            const std::string header = "BDAT " + std::to_string(size) + (last ? " LAST\r\n" : "\r\n");
            const std::array<asio::const_buffer, 2> chunk{asio::buffer(header),
                                                          asio::buffer(t.content.data() + offset, size)};
            if (auto failure = co_await io.write(chunk, o.data_timeout, "BDAT"); failure)
                co_return end_all(*failure);
            final_reply = co_await io.read_reply(last ? o.data_timeout : o.command_timeout, "BDAT");
            offset += size;
            if (final_reply.code != 250) break;
        } while (offset < t.content.size());
    } else {
        if (!data_sent) data_reply = co_await io.command("DATA", o.command_timeout, "DATA");
        if (data_reply.code != 354) {
            if (data_reply.code == 0 || data_reply.code == 421) co_return end_all(data_reply);
            for (std::size_t i = 0; i < n; ++i)
                if (state[i] == State::accepted) result.recipient_replies[i] = data_reply;
            result.connection_reusable = co_await io.rset(o.command_timeout);
            co_return result;
        }
        // RFC 5321 4.5.3.2.5: the timeout is per block sent, not for the whole message.
        const auto pieces = in_pieces(dot_stuffed(t.content));
        for (const auto& piece : pieces) {
            if (auto failure = co_await io.write(piece, o.data_timeout, "message data"); failure)
                co_return end_all(*failure);
        }
        final_reply = co_await io.read_reply(o.data_timeout, "end of data");
    }
    if (final_reply.code == 0 || final_reply.code == 421) co_return end_all(final_reply);
    for (std::size_t i = 0; i < n; ++i)
        if (state[i] == State::accepted) result.recipient_replies[i] = final_reply;
    result.connection_reusable = co_await io.rset(o.command_timeout);
    co_return result;
}

awaitable<void> SmtpClientConnection::quit() {
    if (!io_) co_return;
    Io& io = *io_;
    if (!io.broken && io.socket.is_open()) {
        const auto timeout = std::min<std::chrono::milliseconds>(options_.command_timeout, kQuitTimeout);
        RemoteReply ignored = co_await io.command("QUIT", timeout, "QUIT");
        (void)ignored;
    }
    io.broken = true;
    io.close();
}

std::unique_ptr<ssl::context> make_client_tls_context() {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);  // a missing CA store only matters for `verify`
    ctx->set_verify_mode(ssl::verify_none);  // per connection: `verify` turns it on
    return ctx;
}

}  // namespace edgerelay::relay
