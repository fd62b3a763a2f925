// Group commit: every session hands its write to one writer thread, which applies all
// writes that arrived meanwhile in one LMDB transaction and one sync, then reports
// each outcome. Under load one fsync serves many messages; alone, a message waits for
// just its own sync.
//
// Two lanes, each FIFO: intake's commits (a client waits for each 250) and everything
// else (delivery records, DSNs, operator actions, the tracking index). A batch takes up
// to max_batch_per_lane from each, intake first. A failover or a mass action that
// queues a hundred thousand writes then delays a 250 by one bounded batch, not by the
// whole backlog. Bounded batches also went faster (in the unit tests, 1,600 writes from
// 8 threads: 19,000 to 21,000 a second in batches of up to 1,600, 22,000 to 30,000 in
// batches of 256, when every operation still ran in a nested transaction).
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

    enum class Lane { intake, background };
    static constexpr std::size_t max_batch_per_lane = 256;

    explicit SpoolWriter(Spool& spool);
    ~SpoolWriter();  // stops: pending operations complete with SpoolError::closed
    SpoolWriter(const SpoolWriter&) = delete;
    SpoolWriter& operator=(const SpoolWriter&) = delete;

    void submit(Operation op, Completion done, Lane lane = Lane::background);
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
    std::deque<Pending> intake_pending_;
    std::deque<Pending> background_pending_;
    bool stopping_ = false;
    std::uint64_t batches_ = 0;
    std::uint64_t operations_ = 0;
    std::thread thread_;
};

}  // namespace edgerelay::queue
