// Group commit: every session hands its write to one writer thread, which applies all
// writes that arrived meanwhile in one LMDB transaction and one sync, then reports
// each outcome. Under load one fsync serves many messages; alone, a message waits for
// just its own sync.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>

#include "queue/spool.h"

namespace edgerelay::queue {

class SpoolWriter {
public:
    using Operation = std::function<std::error_code(SpoolWriteTxn&)>;
    // Called on the writer thread once the batch holding the operation is durable
    // (ec empty) or has failed. Keep it short: post the result to your own executor.
    using Completion = std::function<void(std::error_code)>;

    explicit SpoolWriter(Spool& spool);
    ~SpoolWriter();  // stops: pending operations complete with SpoolError::closed
    SpoolWriter(const SpoolWriter&) = delete;
    SpoolWriter& operator=(const SpoolWriter&) = delete;

    void submit(Operation op, Completion done);
    void stop();

    // How many batches and operations have been committed (for tests and metrics).
    std::uint64_t batches() const;
    std::uint64_t operations() const;

private:
    void run();
    struct Pending {
        Operation op;
        Completion done;
    };
    Spool& spool_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending> pending_;
    bool stopping_ = false;
    std::uint64_t batches_ = 0;
    std::uint64_t operations_ = 0;
    std::thread thread_;
};

}  // namespace edgerelay::queue
