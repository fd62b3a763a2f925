// The group-commit writer thread. It sleeps on the condition variable until work
// arrives, takes what is pending, applies it in one LMDB write transaction (a failing
// operation is left out and the rest applied again, so its partial writes never stay),
// commits once (the commit syncs), and then calls the completions: a completion is
// where intake answers 250.
//
// Operations may run more than once (the batch is applied again without one that
// failed; one that did not fit gets a try of its own), so they must only describe
// writes, not consume their inputs.
#include "queue/spool_writer.h"

#include <lmdb.h>

#include <algorithm>
#include <vector>

namespace edgerelay::queue {

SpoolWriter::SpoolWriter(Spool& spool, std::chrono::microseconds gather_delay)
    : spool_(spool), headroom_(spool), gather_delay_(gather_delay) {
    thread_ = std::thread([this] { run(); });
}

SpoolWriter::~SpoolWriter() { stop(); }

void SpoolWriter::submit(Operation op, Completion done, Lane lane) {
    std::unique_lock lock(mutex_);
    if (stopping_) {
        lock.unlock();
        // No writer thread any more to call it on; the caller's own thread will do.
        if (done) done(SpoolError::closed);
        return;
    }
    // The writer waits only while both lanes are empty, so only the first arrival needs
    // to wake it; the rest ride along with that batch or the next.
    const bool was_empty = intake_pending_.empty() && background_pending_.empty();
    (lane == Lane::intake ? intake_pending_ : background_pending_)
        .push_back(Pending{std::move(op), std::move(done), lane, Clock::now()});
    // A writer in its commit delay waits for this many; no need to wait longer.
    const bool gathered = lane == Lane::intake && intake_pending_.size() == gather_target;
    lock.unlock();
    if (was_empty || gathered) wake_.notify_one();
}

void SpoolWriter::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    // From a completion (the writer thread itself) the loop ends by itself after it.
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::uint64_t SpoolWriter::batches() const { return stats().commits; }

std::uint64_t SpoolWriter::operations() const { return stats().operations; }

SpoolWriterStats SpoolWriter::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void SpoolWriter::run() {
    // This thread keeps the default nice value on purpose. At nice -10 it preempted the
    // intake thread whenever its sync returned, so it committed smaller batches, and
    // both benchmarks were 5-10% slower for it (docs/performance.md, "The commit
    // thread's priority").
    MDB_env* const env = spool_.env_;
    const bool read_only = spool_.mode_ == Spool::Mode::read_only;

    // An operation that throws is a programming error on its side; the batch and the
    // writer thread go on, and the caller hears io.
    auto apply = [this](Operation& op, MDB_txn* txn) -> std::error_code {
        SpoolWriteTxn wtxn(spool_, txn);
        try {
            return op ? op(wtxn) : std::error_code{};
        } catch (...) {
            return SpoolError::io;
        }
    };
    double commit_seconds = 0;  // of the batch at hand
    auto commit = [&commit_seconds](MDB_txn* txn) {
        const auto started = Clock::now();
        const int rc = mdb_txn_commit(txn);
        commit_seconds += std::chrono::duration<double>(Clock::now() - started).count();
        return rc;
    };
    // One operation in a transaction of its own, committed (and synced) if it succeeds.
    auto run_alone = [&](Operation& op) -> std::error_code {
        if (read_only) return SpoolError::io;
        MDB_txn* txn = nullptr;
        if (int rc = mdb_txn_begin(env, nullptr, 0, &txn); rc != 0) return Spool::error_from_lmdb(rc);
        if (auto ec = apply(op, txn)) {
            mdb_txn_abort(txn);
            return ec;
        }
        return Spool::error_from_lmdb(commit(txn));
    };

    auto complete = [](const Completion& done, std::error_code ec) {
        if (!done) return;
        try {
            done(ec);
        } catch (...) {
            // A completion must not take the writer (and every later 250) down.
        }
    };

    // Between batches, once their completions are on their way: room ahead of the
    // spool's last page, so the commits that follow do not grow the file.
    auto keep_headroom = [this] {
        headroom_.top_up();  // a failure is counted; the spool works on without the room
        std::lock_guard lock(mutex_);
        stats_.headroom_bytes = headroom_.bytes_written();
        stats_.headroom_failures = headroom_.failures();
    };
    keep_headroom();

    std::deque<Pending> batch;
    std::size_t last_intake_batch = 0;  // intake writes in the batch before
    std::vector<std::error_code> results;  // kept across batches: no allocation per batch
    std::vector<char> left_out;            // operations that failed: not applied again
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            auto has_work = [this] { return !intake_pending_.empty() || !background_pending_.empty(); };
            wake_.wait(lock, [&] { return stopping_ || has_work(); });
            if (stopping_) break;
            // The commit delay: under load (the last batch held two or more intake
            // writes) more are on their way; wait a moment for them.
            if (gather_delay_.count() > 0 && last_intake_batch >= 2 && !intake_pending_.empty() &&
                intake_pending_.size() < gather_target)
                wake_.wait_for(lock, gather_delay_,
                               [&] { return stopping_ || intake_pending_.size() >= gather_target; });
            last_intake_batch = std::min(intake_pending_.size(), max_batch_per_lane);
            for (auto* lane : {&intake_pending_, &background_pending_})
                for (std::size_t i = 0; i < max_batch_per_lane && !lane->empty(); ++i) {
                    batch.push_back(std::move(lane->front()));
                    lane->pop_front();
                }
        }
        const std::size_t n = batch.size();
        results.assign(n, std::error_code{});
        std::uint64_t commits = 0;
        std::size_t succeeded = 0;
        commit_seconds = 0;

        // The whole batch in one transaction. An operation that fails may have written
        // part of its changes, which LMDB cannot take back short of a nested transaction
        // per operation (LMDB allocates a 2 MiB dirty list for each; dropping them saved
        // about 6% of edgerelayd's CPU per message in the intake benchmark). So a failure
        // aborts the transaction and the batch runs again without that operation. A
        // failure is rare (a record for a message deleted meanwhile, a full spool), so
        // a batch nearly always runs once.
        left_out.assign(n, 0);
        for (;;) {
            MDB_txn* txn = nullptr;
            if (int rc = read_only ? EACCES : mdb_txn_begin(env, nullptr, 0, &txn); rc != 0) {
                for (std::size_t i = 0; i < n; ++i)
                    if (!left_out[i]) results[i] = read_only ? make_error_code(SpoolError::io) : Spool::error_from_lmdb(rc);
                break;
            }
            std::size_t failed = n;
            for (std::size_t i = 0; i < n && failed == n; ++i)
                if (!left_out[i] && (results[i] = apply(batch[i].op, txn))) failed = i;
            if (failed < n) {
                mdb_txn_abort(txn);
                left_out[failed] = 1;
                // Past a full map the rest will not fit either: they wait for their own
                // try below instead of failing one rerun at a time.
                if (results[failed] == SpoolError::full)
                    for (std::size_t i = failed + 1; i < n; ++i)
                        if (!left_out[i]) {
                            left_out[i] = 1;
                            results[i] = SpoolError::full;
                        }
                continue;
            }
            const int rc = commit(txn);
            const std::size_t applied = static_cast<std::size_t>(std::count(left_out.begin(), left_out.end(), 0));
            if (rc == 0) {
                succeeded = applied;
                commits = applied ? 1 : 0;
            } else if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
                // Together they do not fit (LMDB needs pages for its free list at
                // commit): each gets a try on its own below.
                for (std::size_t i = 0; i < n; ++i)
                    if (!left_out[i]) results[i] = SpoolError::full;
            } else {
                for (std::size_t i = 0; i < n; ++i)
                    if (!left_out[i]) results[i] = Spool::error_from_lmdb(rc);
            }
            break;
        }
        // Removals in this batch free pages only once it is committed: an operation
        // that did not fit beside the others gets one try on its own.
        for (std::size_t i = 0; i < n; ++i)
            if (results[i] == SpoolError::full && !(results[i] = run_alone(batch[i].op))) {
                ++succeeded;
                ++commits;
            }
        // Counted before the completions run, so a test that waits for one sees it counted.
        {
            const auto now = Clock::now();
            std::lock_guard lock(mutex_);
            stats_.commits += commits;
            stats_.operations += succeeded;
            stats_.commit_seconds += commit_seconds;
            for (std::size_t i = 0; i < n; ++i) {
                if (batch[i].lane != Lane::intake || results[i]) continue;
                const double waited = std::chrono::duration<double>(now - batch[i].submitted).count();
                const auto& bounds = SpoolWriterStats::kWaitBuckets;
                const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), waited) - bounds.begin();
                if (bucket < static_cast<std::ptrdiff_t>(bounds.size())) ++stats_.intake_wait_buckets[bucket];
                ++stats_.intake_waits;
                stats_.intake_wait_seconds += waited;
            }
        }
        // mdb_txn_commit returned: the batch is durable (spool.cpp, "Durability").
        for (std::size_t i = 0; i < n; ++i) complete(batch[i].done, results[i]);
        batch.clear();
        keep_headroom();
    }

    std::deque<Pending> left;
    {
        std::lock_guard lock(mutex_);
        left.swap(intake_pending_);
        for (auto& p : background_pending_) left.push_back(std::move(p));
        background_pending_.clear();
    }
    for (auto& p : left) complete(p.done, SpoolError::closed);
}

}  // namespace edgerelay::queue
