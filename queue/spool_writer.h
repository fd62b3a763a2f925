// Group commit: every session hands its write to one writer thread, which applies all
// writes that arrived meanwhile in one LMDB transaction, then reports each outcome once
// the commit (which syncs) has made it durable. Under load one commit's syncs serve
// many messages; alone, a message waits for a commit of its own.
//
// Two lanes, each FIFO: intake's commits (a client waits for each 250) and everything
// else (delivery records, DSNs, operator actions, the tracking index). A batch takes up
// to max_batch_per_lane from each, intake first. A failover or a mass action that
// queues a hundred thousand writes then delays a 250 by one bounded batch, not by the
// whole backlog. Bounded batches also went faster (in the unit tests, 1,600 writes from
// 8 threads: 19,000 to 21,000 a second in batches of up to 1,600, 22,000 to 30,000 in
// batches of 256, when every operation still ran in a nested transaction).
//
// Under load, a commit delay (PostgreSQL's commit_delay): when the last batch held two
// or more intake writes, the next waits up to gather_delay for gather_target of them
// before it begins. Fewer, larger commits cost less CPU per message, and with the
// server's CPU the limit the intake benchmark went about 7% faster (docs/performance.md,
// "The commit delay"). A lone session waits at most once, right after a busy batch;
// after that its batches hold one write and go at once.
//
// Between batches it keeps zero-filled room past the spool's last page, so that its
// commits overwrite blocks the file already has (spool_headroom.h).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>

#include "queue/spool.h"
#include "queue/spool_headroom.h"

namespace edgerelay::queue {

// What the writer has done since it started (GET /metrics; the intake benchmark reads
// it to tell how many messages one commit served and how long a 250 waited for the disk).
struct SpoolWriterStats {
    // Upper bounds of the intake wait buckets, seconds.
    static constexpr std::array<double, 12> kWaitBuckets{0.0005, 0.001, 0.002, 0.003, 0.005, 0.01,
                                                         0.025, 0.05,  0.1,   0.25,  0.5,   1};
    std::uint64_t commits = 0;     // write transactions committed
    std::uint64_t operations = 0;  // operations in them
    double commit_seconds = 0;     // in mdb_txn_commit, its syncs included
    // Intake writes, from submit to durable: what a client waits between its last byte
    // and the 250, beyond the session's own work.
    std::array<std::uint64_t, kWaitBuckets.size()> intake_wait_buckets{};  // not cumulative
    std::uint64_t intake_waits = 0;
    double intake_wait_seconds = 0;
    // Zeros written past the spool's last page between batches (spool_headroom.h).
    std::uint64_t headroom_bytes = 0;
    std::uint64_t headroom_failures = 0;
};

class SpoolWriter {
public:
    using Operation = std::function<std::error_code(SpoolWriteTxn&)>;
    // Called on the writer thread once the batch holding the operation is durable
    // (ec empty) or has failed. Keep it short: post the result to your own executor.
    using Completion = std::function<void(std::error_code)>;

    enum class Lane { intake, background };
    static constexpr std::size_t max_batch_per_lane = 256;
    static constexpr std::size_t gather_target = 8;
    static constexpr std::chrono::microseconds default_gather_delay{500};

    // gather_delay 0: no commit delay.
    explicit SpoolWriter(Spool& spool, std::chrono::microseconds gather_delay = default_gather_delay);
    ~SpoolWriter();  // stops: pending operations complete with SpoolError::closed
    SpoolWriter(const SpoolWriter&) = delete;
    SpoolWriter& operator=(const SpoolWriter&) = delete;

    void submit(Operation op, Completion done, Lane lane = Lane::background);
    void stop();

    // How many batches and operations have been committed (for tests and metrics).
    std::uint64_t batches() const;
    std::uint64_t operations() const;
    SpoolWriterStats stats() const;

private:
    void run();
    using Clock = std::chrono::steady_clock;
    struct Pending {
        Operation op;
        Completion done;
        Lane lane = Lane::background;
        Clock::time_point submitted{};
    };
    Spool& spool_;
    SpoolHeadroom headroom_;  // used by the writer thread only
    const std::chrono::microseconds gather_delay_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending> intake_pending_;
    std::deque<Pending> background_pending_;
    bool stopping_ = false;
    SpoolWriterStats stats_;
    std::thread thread_;
};

}  // namespace edgerelay::queue
