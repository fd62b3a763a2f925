// One SMTP intake session (RFC 5321 server side): reads commands, answers from the
// reply table, collects a transaction and hands the message to the spool, answering
// 250 only once it is durable. One coroutine per connection on the io thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/data_reader.h"
#include "relay/input_buffer.h"
#include "relay/intake_services.h"
#include "relay/smtp_command.h"
#include "relay/smtp_reply.h"

namespace edgerelay::relay {

class SmtpSession : public std::enable_shared_from_this<SmtpSession> {
public:
    using OnEnd = std::function<void(SmtpSession*)>;
    SmtpSession(boost::asio::ip::tcp::socket socket, std::string client_ip, IntakeServices& services,
                OnEnd on_end);
    ~SmtpSession();

    void start();
    void close();  // daemon shutdown: drop the connection at the next opportunity
    const std::string& client_ip() const { return client_ip_; }

private:
    // Where the dialogue is (RFC 5321 4.1.4 ordering); one transition function below.
    enum class Phase { connected, greeted, mail, rcpt };
    // What the dialogue must do after a command line was handled.
    enum class Action { none, quit, read_data, read_bdat, starttls };
    enum class End { quit, closed, starttls };

    boost::asio::awaitable<void> run();
    boost::asio::awaitable<void> watchdog();
    template <class Stream>
    boost::asio::awaitable<End> dialogue(Stream& stream);
    template <class Stream>
    boost::asio::awaitable<bool> flush(Stream& stream);
    template <class Stream>
    boost::asio::awaitable<bool> fill(Stream& stream, std::size_t chunk);
    template <class Stream>
    boost::asio::awaitable<bool> read_more_data(Stream& stream);
    template <class Stream>
    boost::asio::awaitable<bool> read_data(Stream& stream);
    template <class Stream>
    boost::asio::awaitable<bool> read_bdat_chunk(Stream& stream);

    Action on_command(std::string_view line);
    Action on_ehlo(const Command& cmd);
    Action on_mail(const Command& cmd);
    Action on_rcpt(const Command& cmd);
    Action on_data(const Command& cmd);
    Action on_bdat(const Command& cmd);
    Action on_starttls(const Command& cmd);
    boost::asio::awaitable<void> finish_message(DataError error);

    void reply(Reply r, std::string_view detail = {});
    // An error reply, logged as a reject event and counted against max_errors (the
    // dialogue says 421 and closes once it is reached).
    void reject(Reply r, std::string_view detail = {});
    Action refuse(Reply r, std::string_view detail = {});  // reject, then carry on
    void reset_transaction();
    std::string protocol_name() const;
    void set_deadline(std::chrono::steady_clock::duration d);

    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer timer_;
    std::chrono::steady_clock::time_point deadline_;
    std::string client_ip_;
    IntakeServices& services_;
    OnEnd on_end_;
    bool relay_allowed_ = false;
    bool timed_out_ = false;
    bool closing_ = false;
    bool tls_ = false;

    InputBuffer in_;       // bytes read, not yet consumed
    bool discarding_line_ = false;  // inside a command line longer than 512 octets
    std::string out_;      // replies not yet written (pipelining: written before a read)
    unsigned errors_ = 0;
    std::string current_command_;  // copied: in_ moves while the data is read

    Phase phase_ = Phase::connected;
    bool esmtp_ = false;
    std::string helo_;
    // The transaction (RFC 5321 3.3): MAIL, RCPT..., DATA or BDAT...
    MailFrom mail_;
    std::vector<std::string> recipients_;
    unsigned rejected_recipients_ = 0;
    std::optional<DataReader> data_;  // DATA content, or BDAT chunks so far
    std::uint64_t bdat_size_ = 0;
    bool bdat_last_ = false;
    std::optional<Reply> bdat_refusal_;  // BDAT out of sequence: consume, then refuse
};

}  // namespace edgerelay::relay
