// SMTP intake session: the dialogue (I/O, timeouts, STARTTLS) and the command state
// machine (on_command and the on_* handlers), which only appends replies to out_.
#include "relay/smtp_session.h"

#include <arpa/inet.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "conf/config.h"
#include "queue/event_log.h"
#include "queue/queue_id.h"
#include "relay/intake.h"
#include "relay/message_headers.h"
#include "relay/spool_commit.h"
#include "routing/route_table.h"

namespace edgerelay::relay {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kMaxCommandLine = 512;  // RFC 5321 4.5.3.1.4, CRLF included
constexpr std::size_t kCommandReadChunk = 1024;
constexpr std::size_t kDataReadChunk = 64 * 1024;
constexpr std::size_t kMaxLoggedCommand = 200;

std::array<unsigned char, 16> mapped_address(const asio::ip::address& address) {
    if (address.is_v4()) return asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4()).to_bytes();
    return address.to_v6().to_bytes();
}

// Network input goes into JSON logs: keep it printable ASCII and bounded.
std::string loggable(std::string_view text) {
    std::string out(text.substr(0, kMaxLoggedCommand));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return out;
}

Reply reply_for(DataError error) {
    switch (error) {
    case DataError::bare_cr_or_lf: return Reply::bad_data;
    case DataError::line_too_long: return Reply::data_line_too_long;
    case DataError::too_big: return Reply::too_big;
    case DataError::none: break;
    }
    return Reply::ok;
}

}  // namespace

SmtpSession::SmtpSession(asio::ip::tcp::socket socket, std::string client_ip, IntakeServices& services, OnEnd on_end)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      client_ip_(std::move(client_ip)),
      services_(services),
      on_end_(std::move(on_end)) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(client_ip_, ec);
    if (!ec) {
        const auto bytes = mapped_address(address);
        for (const auto& network : services_.config.server.relay_networks)
            if (network.contains(bytes)) relay_allowed_ = true;
    }
}

SmtpSession::~SmtpSession() {
    if (on_end_) on_end_(this);
}

void SmtpSession::start() {
    set_deadline(services_.config.server.command_timeout);
    asio::co_spawn(socket_.get_executor(), [self = shared_from_this()] { return self->watchdog(); }, asio::detached);
    asio::co_spawn(socket_.get_executor(), [self = shared_from_this()] { return self->run(); }, asio::detached);
}

void SmtpSession::close() {
    closing_ = true;
    // close() alone ends the connection as shutdown() would (FIN, or RST if the client
    // sent what was never read), and it is one system call per connection fewer.
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
}

void SmtpSession::set_deadline(std::chrono::steady_clock::duration d) {
    deadline_ = std::chrono::steady_clock::now() + d;
    // A later deadline costs nothing (the watchdog re-arms when it wakes); an earlier
    // one (data_timeout below command_timeout) must wake it now.
    if (deadline_ < timer_.expiry()) timer_.cancel();
}

// RFC 5321 4.5.3.2: the server times out an idle client (command_timeout) or a stalled
// transfer (data_timeout). One timer per session; moving deadline_ is just a store, the
// timer re-arms itself when it wakes early. On expiry the pending I/O is cancelled so
// the dialogue can say 421 4.4.2; if even that write stalls, the socket is closed.
awaitable<void> SmtpSession::watchdog() {
    while (socket_.is_open() && !closing_) {
        timer_.expires_at(deadline_);
        co_await timer_.async_wait(as_tuple_awaitable);
        if (closing_ || !socket_.is_open()) co_return;
        if (std::chrono::steady_clock::now() < deadline_) continue;
        if (!timed_out_) {
            timed_out_ = true;
            set_deadline(std::chrono::seconds(10));
            boost::system::error_code ignored;
            socket_.cancel(ignored);
        } else {
            close();
        }
    }
}

awaitable<void> SmtpSession::run() {
    ++services_.counters.connections;
    out_ = "220 " + services_.config.server.hostname + " ESMTP edgerelay\r\n";
    End end = co_await dialogue(socket_);
    if (end == End::starttls && services_.tls) {
        asio::ssl::stream<asio::ip::tcp::socket&> tls(socket_, *services_.tls);
        set_deadline(services_.config.server.command_timeout);
        auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, as_tuple_awaitable);
        if (!ec && !closing_ && !timed_out_) {
            // RFC 3207 4.2: forget everything learnt before TLS; the client starts over.
            tls_ = true;
            phase_ = Phase::connected;
            esmtp_ = false;
            helo_.clear();
            reset_transaction();
            co_await dialogue(tls);
        }
    }
    close();
}

template <class Stream>
awaitable<bool> SmtpSession::flush(Stream& stream) {
    if (out_.empty()) co_return true;
    if (!data_) set_deadline(services_.config.server.command_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out_), as_tuple_awaitable);
    out_.clear();
    co_return !ec;
}

template <class Stream>
awaitable<bool> SmtpSession::fill(Stream& stream, std::size_t chunk) {
    const auto room = in_.prepare(chunk);
    auto [ec, n] = co_await stream.async_read_some(room, as_tuple_awaitable);
    in_.commit(n);
    co_return !ec && !closing_;
}

// GCC 12 mis-resumes coroutines suspended in `if (!co_await ...)`, in `a || co_await`
// and inside switch cases: every await below lands in a named value first.
template <class Stream>
awaitable<SmtpSession::End> SmtpSession::dialogue(Stream& stream) {
    for (;;) {
        const std::string_view pending = in_.view();
        const std::size_t newline = pending.find('\n');
        if (newline == std::string_view::npos) {
            if (pending.size() > kMaxCommandLine) {
                // Over-long line: drop what we have; the rest up to its LF goes too.
                discarding_line_ = true;
                in_.clear();
            }
            if (const bool ok = co_await flush(stream); !ok) co_return End::closed;
            if (!data_) set_deadline(services_.config.server.command_timeout);
            if (const bool ok = co_await fill(stream, kCommandReadChunk); !ok) break;
            in_.release_if_larger(4 * kDataReadChunk);
            continue;
        }
        // The line stays readable until the next read: consume() moves nothing.
        std::string_view line = pending.substr(0, newline);
        in_.consume(newline + 1);
        const bool too_long = discarding_line_ || line.size() + 1 > kMaxCommandLine;
        discarding_line_ = false;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        current_command_.assign(line);
        const Action action = too_long ? refuse(Reply::line_too_long) : on_command(line);
        if (action == Action::quit) {
            co_await flush(stream);
            co_return End::quit;
        } else if (action == Action::starttls) {
            if (const bool ok = co_await flush(stream); !ok) co_return End::closed;
            // RFC 3207 4.2 / CVE-2011-0411: nothing pipelined before the handshake counts.
            in_.clear();
            co_return End::starttls;
        } else if (action == Action::read_data) {
            if (const bool ok = co_await read_data(stream); !ok) co_return End::closed;
        } else if (action == Action::read_bdat) {
            if (const bool ok = co_await read_bdat_chunk(stream); !ok) co_return End::closed;
        }
        if (errors_ >= services_.config.server.max_errors) {
            reply(Reply::too_many_errors);
            co_await flush(stream);
            co_return End::closed;
        }
    }
    if (timed_out_) {
        out_.clear();
        reply(Reply::timeout);
        co_await flush(stream);
    }
    co_return End::closed;
}

// More message data; on a data_timeout the client hears 421 4.4.2.
template <class Stream>
awaitable<bool> SmtpSession::read_more_data(Stream& stream) {
    bool ok = co_await flush(stream);
    if (ok) ok = co_await fill(stream, kDataReadChunk);
    if (!ok && timed_out_) {
        out_.clear();
        reply(Reply::timeout);
        co_await flush(stream);
    }
    co_return ok;
}

template <class Stream>
awaitable<bool> SmtpSession::read_data(Stream& stream) {
    set_deadline(services_.config.server.data_timeout);
    for (;;) {
        in_.consume(data_->feed(in_.view()));
        if (data_->finished()) break;
        if (const bool ok = co_await read_more_data(stream); !ok) co_return false;
    }
    co_await finish_message(data_->error());
    set_deadline(services_.config.server.command_timeout);
    co_return true;
}

// RFC 3030: exactly bdat_size_ octets follow the BDAT line, whatever we answer.
template <class Stream>
awaitable<bool> SmtpSession::read_bdat_chunk(Stream& stream) {
    set_deadline(services_.config.server.data_timeout);
    std::uint64_t remaining = bdat_size_;
    for (;;) {
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, in_.size()));
        if (data_ && !bdat_refusal_) data_->feed(in_.view().substr(0, take));
        in_.consume(take);
        remaining -= take;
        if (remaining == 0) break;
        if (const bool ok = co_await read_more_data(stream); !ok) co_return false;
    }
    set_deadline(services_.config.server.command_timeout);
    if (bdat_refusal_) {
        const Reply refusal = *bdat_refusal_;
        bdat_refusal_.reset();
        reject(refusal);
        co_return true;
    }
    if (data_->error() != DataError::none) {
        // RFC 3030 2: a failed chunk fails the transaction; the client sends no more.
        co_await finish_message(data_->error());
    } else if (bdat_last_) {
        data_->finish_chunks();
        co_await finish_message(data_->error());
    } else {
        reply(Reply::chunk_ok, std::to_string(bdat_size_));
    }
    co_return true;
}

awaitable<void> SmtpSession::finish_message(DataError error) {
    const auto& server = services_.config.server;
    std::string data = std::move(data_->content());
    data_.reset();
    if (error != DataError::none) {
        reject(reply_for(error));
        reset_transaction();
        co_return;
    }
    const HeaderScan scan = scan_headers(data);
    if (scan.received_count > server.max_received_headers) {
        reject(Reply::too_many_hops);
        reset_transaction();
        co_return;
    }
    queue::Envelope envelope;
    envelope.queue_id = queue::new_queue_id();
    envelope.arrival = queue::now_micros();
    envelope.sender = mail_.sender.address();
    envelope.client_ip = client_ip_;
    envelope.helo = helo_;
    envelope.tls = tls_;
    envelope.smtputf8 = mail_.smtputf8;
    envelope.eight_bit_mime = mail_.body == BodyType::eight_bit_mime;
    envelope.recipients.reserve(recipients_.size());
    for (const auto& address : recipients_) envelope.recipients.push_back(queue::Recipient{address});

    const std::string protocol = protocol_name();
    const std::string received = received_header(ReceivedInfo{
        server.hostname, helo_, client_ip_, protocol, envelope.queue_id,
        recipients_.size() == 1 ? std::string_view(recipients_.front()) : std::string_view(), envelope.arrival});
    std::string content =
        spooled_content(received, data, scan, envelope.queue_id + "@" + server.hostname, envelope.message_id);
    envelope.size = content.size();

    queue::LogEvent event("receive");
    event.set("queue_id", envelope.queue_id)
        .set("message_id", envelope.message_id)
        .set("client_ip", client_ip_)
        .set("helo", loggable(helo_))
        .set("tls", tls_)
        .set("sender", envelope.sender);
    boost::json::array recipients;
    for (const auto& address : recipients_) recipients.emplace_back(address);
    event.set("recipients", std::move(recipients)).set("size", envelope.size);
    const std::string queue_id = envelope.queue_id;

    const std::error_code ec = co_await commit_message(services_.writer, std::move(envelope), std::move(content));
    reset_transaction();
    if (ec) {
        reject(ec == queue::SpoolError::full ? Reply::spool_full : Reply::spool_error);
        co_return;
    }
    ++services_.counters.received;
    services_.log.write(event);
    reply(Reply::queued, queue_id);
    if (services_.on_queued) services_.on_queued(queue_id);
}

void SmtpSession::reply(Reply r, std::string_view detail) { out_ += format_reply(r, detail); }

SmtpSession::Action SmtpSession::refuse(Reply r, std::string_view detail) {
    reject(r, detail);
    return Action::none;
}

void SmtpSession::reject(Reply r, std::string_view detail) {
    const std::string line = format_reply(r, detail);
    out_ += line;
    ++errors_;
    ++services_.counters.rejected;
    queue::LogEvent event("reject");
    event.set("client_ip", client_ip_);
    if (!helo_.empty()) event.set("helo", loggable(helo_));
    if (phase_ == Phase::mail || phase_ == Phase::rcpt) event.set("sender", mail_.sender.address());
    event.set("command", loggable(current_command_))
        .set("reply", std::string_view(line).substr(0, line.size() - 2));
    services_.log.write(event);
}

void SmtpSession::reset_transaction() {
    if (phase_ != Phase::connected) phase_ = Phase::greeted;
    mail_ = MailFrom{};
    recipients_.clear();
    rejected_recipients_ = 0;
    data_.reset();
    bdat_refusal_.reset();
}

std::string SmtpSession::protocol_name() const {
    std::string name = mail_.smtputf8 ? "UTF8SMTP" : (esmtp_ ? "ESMTP" : "SMTP");
    if (tls_) name += "S";
    return name;
}

SmtpSession::Action SmtpSession::on_command(std::string_view line) {
    const Command cmd = parse_command(line);
    if (data_ && cmd.verb != Verb::bdat && cmd.verb != Verb::quit && cmd.verb != Verb::noop &&
        cmd.verb != Verb::rset) {
        // Between BDAT chunks only BDAT (and RSET/NOOP/QUIT) make sense: RFC 3030 2.
        return refuse(Reply::bad_sequence);
    }
    switch (cmd.verb) {
    case Verb::ehlo:
    case Verb::helo: return on_ehlo(cmd);
    case Verb::mail: return on_mail(cmd);
    case Verb::rcpt: return on_rcpt(cmd);
    case Verb::data: return on_data(cmd);
    case Verb::bdat: return on_bdat(cmd);
    case Verb::starttls: return on_starttls(cmd);
    case Verb::rset:
        if (!cmd.args.empty()) return refuse(Reply::syntax);
        reset_transaction();
        reply(Reply::ok);
        return Action::none;
    case Verb::noop: reply(Reply::ok); return Action::none;
    case Verb::quit: reply(Reply::closing); return Action::quit;
    case Verb::vrfy:
        if (cmd.args.empty()) return refuse(Reply::syntax);
        reply(Reply::vrfy_cannot);
        return Action::none;
    case Verb::help: reply(Reply::help); return Action::none;
    case Verb::expn:
    case Verb::not_implemented: return refuse(Reply::not_implemented);
    case Verb::unknown: break;
    }
    return refuse(Reply::unknown_command);
}

SmtpSession::Action SmtpSession::on_ehlo(const Command& cmd) {
    if (cmd.args.empty()) return refuse(Reply::syntax);
    helo_ = std::string(cmd.args.substr(0, cmd.args.find(' ')));
    esmtp_ = cmd.verb == Verb::ehlo;
    phase_ = Phase::greeted;
    reset_transaction();
    const auto& server = services_.config.server;
    if (!esmtp_) {
        out_ += "250 " + server.hostname + "\r\n";
        return Action::none;
    }
    out_ += "250-" + server.hostname + "\r\n";
    out_ += "250-PIPELINING\r\n";
    out_ += "250-SIZE " + std::to_string(server.max_message_size) + "\r\n";
    out_ += "250-VRFY\r\n";
    if (services_.tls && !tls_) out_ += "250-STARTTLS\r\n";
    out_ += "250-ENHANCEDSTATUSCODES\r\n";
    out_ += "250-8BITMIME\r\n";
    out_ += "250-SMTPUTF8\r\n";
    out_ += "250 CHUNKING\r\n";
    return Action::none;
}

SmtpSession::Action SmtpSession::on_mail(const Command& cmd) {
    if (phase_ == Phase::connected) return refuse(Reply::need_helo);
    if (phase_ != Phase::greeted) return refuse(Reply::nested_mail);
    auto parsed = parse_mail_from(cmd.args);
    if (!parsed.value) return refuse(parsed.error);
    if (parsed.value->size && *parsed.value->size > services_.config.server.max_message_size)
        return refuse(Reply::too_big);
    mail_ = std::move(*parsed.value);
    phase_ = Phase::mail;
    reply(Reply::sender_ok);
    return Action::none;
}

SmtpSession::Action SmtpSession::on_rcpt(const Command& cmd) {
    const auto& server = services_.config.server;
    if (phase_ == Phase::connected) return refuse(Reply::need_helo);
    if (phase_ == Phase::greeted) return refuse(Reply::need_mail);
    std::string address;
    // RFC 5321 4.5.1: "RCPT TO:<postmaster>" without a domain must be accepted.
    std::string_view args = cmd.args;
    if (args.size() >= 3 && ascii_iequals(args.substr(0, 3), "to:")) {
        std::string_view path = args.substr(3);
        while (!path.empty() && path.front() == ' ') path.remove_prefix(1);
        if (ascii_iequals(path, "<postmaster>"))
            address = server.postmaster.empty() ? "postmaster@" + server.hostname : server.postmaster;
    }
    if (address.empty()) {
        auto parsed = parse_rcpt_to(args, mail_.smtputf8);
        if (!parsed.value) {
            ++rejected_recipients_;
            return refuse(parsed.error);
        }
        const Mailbox& mailbox = parsed.value->recipient;
        // No open relay: only exact served domains, unless the client may relay.
        const bool served = !mailbox.domain_is_literal && services_.routes.serves(mailbox.domain);
        if (!served && !relay_allowed_) {
            ++rejected_recipients_;
            return refuse(Reply::relay_denied, "<" + loggable(mailbox.address()) + ">");
        }
        address = mailbox.address();
    }
    if (recipients_.size() >= server.max_recipients) {
        ++rejected_recipients_;
        return refuse(Reply::too_many_recipients);
    }
    if (std::find(recipients_.begin(), recipients_.end(), address) == recipients_.end())
        recipients_.push_back(std::move(address));
    phase_ = Phase::rcpt;
    reply(Reply::recipient_ok);
    return Action::none;
}

SmtpSession::Action SmtpSession::on_data(const Command& cmd) {
    if (!cmd.args.empty()) return refuse(Reply::syntax);
    if (phase_ == Phase::connected) return refuse(Reply::need_helo);
    if (phase_ == Phase::greeted) return refuse(Reply::need_mail);
    if (phase_ == Phase::mail)
        return refuse(rejected_recipients_ ? Reply::no_valid_recipients : Reply::need_rcpt);
    data_.emplace(DataReader::Mode::dot_stuffed, services_.config.server.max_message_size);
    reply(Reply::start_data);
    return Action::read_data;
}

SmtpSession::Action SmtpSession::on_bdat(const Command& cmd) {
    const auto args = parse_bdat(cmd.args);
    if (!args) return refuse(Reply::syntax);
    bdat_size_ = args->size;
    bdat_last_ = args->last;
    if (phase_ == Phase::connected) bdat_refusal_ = Reply::need_helo;
    else if (phase_ == Phase::greeted) bdat_refusal_ = Reply::need_mail;
    else if (phase_ == Phase::mail)
        bdat_refusal_ = rejected_recipients_ ? Reply::no_valid_recipients : Reply::need_rcpt;
    else if (!data_)
        data_.emplace(DataReader::Mode::chunked, services_.config.server.max_message_size);
    return Action::read_bdat;
}

SmtpSession::Action SmtpSession::on_starttls(const Command& cmd) {
    if (!cmd.args.empty()) return refuse(Reply::syntax);
    if (tls_) return refuse(Reply::tls_active);
    if (!services_.tls) return refuse(Reply::tls_unavailable);
    reply(Reply::start_tls);
    return Action::starttls;
}

}  // namespace edgerelay::relay
