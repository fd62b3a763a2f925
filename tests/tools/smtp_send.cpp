// Test driver for the delivery client: delivers a message file to one server with
// SmtpClientConnection and prints what happened as one JSON object on stdout.
//
//   smtp_send --address 127.0.0.2 --port 2525 --from a@x --to b@y [--to ...] --message FILE
//             [--host-name mx.test] [--helo client.test] [--tls none|may|verify]
//             [--messages N] [--smtputf8] [--8bitmime]
//             [--connect-timeout-ms MS] [--command-timeout-ms MS] [--data-timeout-ms MS]
//
// Output: {"connected": bool, "failure": REPLY|null, "tls": bool,
//          "messages": [{"replies": [{"recipient": A, ...REPLY}], "reusable": bool}],
//          "usable": bool}   with REPLY = {"code", "enhanced", "text", "line"}.
// --messages N sends the same message N times over the one connection (reuse), and
// stops early when the connection is no longer reusable. Exit status 0 unless the
// arguments or the message file are bad (2).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "relay/smtp_client.h"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace edgerelay;

namespace {

struct Arguments {
    relay::ConnectOptions options;
    relay::Transaction transaction;
    std::string message_file;
    int messages = 1;
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "smtp_send: " << why << "\n";
    std::exit(2);
}

Arguments parse(int argc, char** argv) {
    Arguments a;
    a.options.helo_name = "client.test";
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(flag + " needs a value");
            return argv[++i];
        };
        auto millis = [&]() { return std::chrono::milliseconds(std::stoll(value())); };
        if (flag == "--address") a.options.address = value();
        else if (flag == "--port") a.options.port = static_cast<std::uint16_t>(std::stoi(value()));
        else if (flag == "--host-name") a.options.host_name = value();
        else if (flag == "--helo") a.options.helo_name = value();
        else if (flag == "--tls") {
            const std::string policy = value();
            if (policy == "none") a.options.tls = conf::TlsPolicy::none;
            else if (policy == "may") a.options.tls = conf::TlsPolicy::may;
            else if (policy == "verify") a.options.tls = conf::TlsPolicy::verify;
            else usage("--tls takes none, may or verify");
        } else if (flag == "--from") a.transaction.sender = value();
        else if (flag == "--to") a.transaction.recipients.push_back(value());
        else if (flag == "--message") a.message_file = value();
        else if (flag == "--messages") a.messages = std::stoi(value());
        else if (flag == "--smtputf8") a.transaction.smtputf8 = true;
        else if (flag == "--8bitmime") a.transaction.eight_bit_mime = true;
        else if (flag == "--connect-timeout-ms") a.options.connect_timeout = millis();
        else if (flag == "--command-timeout-ms") a.options.command_timeout = millis();
        else if (flag == "--data-timeout-ms") a.options.data_timeout = millis();
        else usage("unknown argument " + flag);
    }
    if (a.options.address.empty() || a.message_file.empty()) usage("--address and --message are required");
    return a;
}

json::object to_json(const relay::RemoteReply& r) {
    return json::object{{"code", r.code}, {"enhanced", r.enhanced}, {"text", r.text}, {"line", r.line()}};
}

asio::awaitable<void> run(Arguments& a, asio::ssl::context& tls, json::object& out) {
    relay::RemoteReply failure;
    auto connection =
        co_await relay::SmtpClientConnection::open(co_await asio::this_coro::executor, tls, a.options, failure);
    out["connected"] = connection != nullptr;
    out["failure"] = connection ? json::value(nullptr) : json::value(to_json(failure));
    out["tls"] = connection && connection->tls_active();
    json::array messages;
    for (int m = 0; connection && m < a.messages; ++m) {
        const relay::TransactionResult result = co_await connection->send(a.transaction);
        json::array replies;
        for (std::size_t i = 0; i < result.recipient_replies.size(); ++i) {
            json::object reply = to_json(result.recipient_replies[i]);
            reply["recipient"] = a.transaction.recipients[i];
            replies.push_back(std::move(reply));
        }
        messages.push_back(json::object{{"replies", std::move(replies)}, {"reusable", result.connection_reusable}});
        if (!result.connection_reusable) break;
    }
    out["messages"] = std::move(messages);
    out["usable"] = connection && connection->usable();
    if (connection) co_await connection->quit();
}

}  // namespace

int main(int argc, char** argv) {
    Arguments a = parse(argc, argv);
    std::ifstream file(a.message_file, std::ios::binary);
    if (!file) usage("cannot read " + a.message_file);
    std::ostringstream content;
    content << file.rdbuf();
    const std::string message = content.str();
    a.transaction.content = message;

    asio::io_context io;
    auto tls = relay::make_client_tls_context();
    json::object out;
    asio::co_spawn(io, run(a, *tls, out), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    io.run();
    std::cout << json::serialize(out) << std::endl;
    return 0;
}
