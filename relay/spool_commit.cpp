// Bridges SpoolWriter's thread-side completion back onto the caller's executor.
#include "relay/spool_commit.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

namespace edgerelay::relay {

namespace asio = boost::asio;

asio::awaitable<std::error_code> spool_write(queue::SpoolWriter& writer, queue::SpoolWriter::Operation op,
                                             queue::SpoolWriter::Lane lane) {
    auto initiate = [&writer, lane](auto handler, queue::SpoolWriter::Operation operation) {
        using Handler = decltype(handler);
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        auto shared = std::make_shared<std::pair<Handler, decltype(work)>>(std::move(handler), std::move(work));
        writer.submit(
            std::move(operation),
            [shared](std::error_code ec) {
                auto ex = shared->second.get_executor();
                asio::post(ex, [shared, ec]() mutable {
                    shared->second.reset();
                    std::move(shared->first)(ec);
                });
            },
            lane);
    };
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(std::error_code)>(
        initiate, asio::use_awaitable, std::move(op));
}

asio::awaitable<std::error_code> commit_message(queue::SpoolWriter& writer, queue::Envelope envelope,
                                                std::string content) {
    // A named operation, not a temporary in the co_await expression: GCC 12 destroys
    // such temporaries twice across the suspension.
    queue::SpoolWriter::Operation op = [env = std::move(envelope), data = std::move(content)](
                                           queue::SpoolWriteTxn& txn) { return txn.put_message(env, data); };
    co_return co_await spool_write(writer, std::move(op), queue::SpoolWriter::Lane::intake);
}

}  // namespace edgerelay::relay
