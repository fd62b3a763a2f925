// Bridges SpoolWriter's thread-side completion back onto the session's executor.
#include "relay/spool_commit.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

namespace edgerelay::relay {

namespace asio = boost::asio;

boost::asio::awaitable<std::error_code> commit_message(queue::SpoolWriter& writer, queue::Envelope envelope,
                                                       std::string content) {
    auto initiate = [&writer](auto handler, queue::Envelope env, std::string data) {
        using Handler = decltype(handler);
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        auto shared = std::make_shared<std::pair<Handler, decltype(work)>>(std::move(handler), std::move(work));
        writer.submit(
            [env = std::move(env), data = std::move(data)](queue::SpoolWriteTxn& txn) {
                return txn.put_message(env, data);
            },
            [shared](std::error_code ec) {
                auto ex = shared->second.get_executor();
                asio::post(ex, [shared, ec]() mutable {
                    shared->second.reset();
                    std::move(shared->first)(ec);
                });
            });
    };
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(std::error_code)>(
        initiate, asio::use_awaitable, std::move(envelope), std::move(content));
}

}  // namespace edgerelay::relay
