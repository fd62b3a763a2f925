// Group commit: batching under concurrency, isolation of a failing operation, a full
// map, shutdown, and that an acknowledged message survives the writer being killed.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <optional>
#include <random>
#include <set>

#include "queue/queue_id.h"
#include "queue/spool_writer.h"
#include "tests/unit/queue/spool_test_messages.h"

namespace edgerelay::queue {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t map_256m = 256ull << 20;

using testing::content_for;
using testing::make_envelope;

class SpoolWriterTest : public testing::SpoolDirTest {
protected:
    SpoolWriterTest() : SpoolDirTest("writer") {}
};

SpoolWriter::Operation put_op(const std::string& id, std::size_t size = 4096) {
    return [env = make_envelope(id), content = content_for(id, size)](SpoolWriteTxn& txn) {
        return txn.put_message(env, content);
    };
}

// Counts completions and lets a test wait for a number of them.
class Completions {
public:
    SpoolWriter::Completion make(std::error_code* out = nullptr) {
        return [this, out](std::error_code ec) {
            std::lock_guard lock(mutex_);
            if (out) *out = ec;
            if (ec) ++errors_;
            ++count_;
            cv_.notify_all();
        };
    }
    bool wait_for(std::size_t n, std::chrono::seconds limit = 60s) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, limit, [&] { return count_ >= n; });
    }
    std::size_t count() {
        std::lock_guard lock(mutex_);
        return count_;
    }
    std::size_t errors() {
        std::lock_guard lock(mutex_);
        return errors_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::size_t count_ = 0, errors_ = 0;
};

// An operation that holds the writer inside its transaction until released, so the
// test can line up the next batch deterministically.
class Gate {
public:
    SpoolWriter::Operation op() {
        return [this](SpoolWriteTxn&) {
            entered_.set_value();
            release_future_.wait();
            return std::error_code{};
        };
    }
    void wait_entered() { entered_future_.wait(); }
    void release() { release_.set_value(); }

private:
    std::promise<void> entered_, release_;
    std::shared_future<void> entered_future_ = entered_.get_future().share();
    std::shared_future<void> release_future_ = release_.get_future().share();
};

TEST_F(SpoolWriterTest, CompletionComesAfterTheCommit) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    const auto id = new_queue_id();
    std::promise<std::pair<std::error_code, bool>> result;
    const auto caller = std::this_thread::get_id();
    writer.submit(put_op(id), [&](std::error_code ec) {
        // A fresh read transaction sees only committed data.
        EXPECT_NE(std::this_thread::get_id(), caller);
        result.set_value({ec, spool.find_content(id) == content_for(id)});
    });
    auto [ec, visible] = result.get_future().get();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(visible);
    EXPECT_EQ(writer.operations(), 1u);
    EXPECT_EQ(writer.batches(), 1u);
}

// Between batches the writer keeps zeros ahead of the spool's last page
// (spool_headroom.h), so the commits that follow do not grow the file.
TEST_F(SpoolWriterTest, KeepsRoomAheadOfTheSpool) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    Completions done;
    // About 3 MiB, past the first steps of room, ten messages a batch as from a few
    // sessions: each batch (about 200 KiB, more than min_chunk) is written back as room
    // after it, so no commit grows the file.
    constexpr std::size_t count = 200;
    for (std::size_t i = 0; i < count; ++i) {
        writer.submit(put_op(new_queue_id(), 16 * 1024), done.make());
        if (i % 10 == 9) {
            ASSERT_TRUE(done.wait_for(i + 1));
        }
    }
    EXPECT_EQ(done.errors(), 0u);
    writer.stop();  // the top-up after the last batch is done and counted

    const auto stats = writer.stats();
    const auto used = spool.stats().used_bytes;
    const auto size = fs::file_size(fs::path(spool_path()) / "data.mdb");
    EXPECT_GE(stats.headroom_bytes, used) << "the file grew by the writer's zeros, not by the commits";
    EXPECT_EQ(stats.headroom_failures, 0u);
    EXPECT_GE(size, used + SpoolHeadroom::min_step) << "a whole step of room after the last batch";
}

// The counters GET /metrics shows: commits, writes, the time committing, and how long
// each intake write waited to be durable (background writes are not in that histogram).
TEST_F(SpoolWriterTest, StatsCountCommitsAndIntakeWaits) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    Gate gate;
    Completions done;
    writer.submit(gate.op(), done.make());
    gate.wait_entered();
    for (int i = 0; i < 3; ++i) writer.submit(put_op(new_queue_id()), done.make(), SpoolWriter::Lane::intake);
    writer.submit(put_op(new_queue_id()), done.make(), SpoolWriter::Lane::background);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the intake writes wait behind the gate
    gate.release();
    ASSERT_TRUE(done.wait_for(5));

    const SpoolWriterStats stats = writer.stats();
    EXPECT_EQ(stats.commits, 2u);  // the gate's (it writes nothing, but commits), then the four
    EXPECT_EQ(stats.operations, 5u);
    EXPECT_GT(stats.commit_seconds, 0.0);
    EXPECT_EQ(stats.intake_waits, 3u);
    EXPECT_GE(stats.intake_wait_seconds, 3 * 0.020);
    std::uint64_t counted = 0;
    for (std::size_t i = 0; i < stats.intake_wait_buckets.size(); ++i) {
        counted += stats.intake_wait_buckets[i];
        // Each waited at least 20 ms: nothing in the buckets below that.
        if (SpoolWriterStats::kWaitBuckets[i] < 0.020) {
            EXPECT_EQ(stats.intake_wait_buckets[i], 0u) << i;
        }
    }
    EXPECT_EQ(counted, 3u);
}

// A lone write needs nothing after its own commit (which syncs its meta page too), and
// the counters hold it by the time its completion runs.
TEST_F(SpoolWriterTest, ALoneWriteIsCountedBeforeItsCompletion) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    std::promise<SpoolWriterStats> seen;
    writer.submit(put_op(new_queue_id()), [&](std::error_code) { seen.set_value(writer.stats()); },
                  SpoolWriter::Lane::intake);
    const SpoolWriterStats at_completion = seen.get_future().get();
    EXPECT_EQ(at_completion.commits, 1u);
    EXPECT_EQ(at_completion.operations, 1u);
    EXPECT_EQ(at_completion.intake_waits, 1u);
}

// Two intake writes that arrive while the writer is held, so its next batch holds both.
void make_a_busy_batch(SpoolWriter& writer) {
    Gate gate;
    Completions done;
    writer.submit(gate.op(), done.make());
    gate.wait_entered();
    for (int i = 0; i < 2; ++i) writer.submit(put_op(new_queue_id()), done.make(), SpoolWriter::Lane::intake);
    gate.release();
    ASSERT_TRUE(done.wait_for(3));
    ASSERT_EQ(done.errors(), 0u);
}

// The commit delay: after a batch of two or more intake writes, the writer waits for
// gather_target of them (or the delay) before it commits, and the last of them wakes it.
TEST_F(SpoolWriterTest, UnderLoadTheWriterGathersIntakeWrites) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool, std::chrono::seconds(30));
    make_a_busy_batch(writer);
    const std::uint64_t commits_before = writer.stats().commits;

    Completions done;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < SpoolWriter::gather_target; ++i) {
        // Spaced out: without the delay each would be a commit of its own.
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        EXPECT_EQ(done.count(), 0u) << "committed before write " << i << " arrived";
        writer.submit(put_op(new_queue_id()), done.make(), SpoolWriter::Lane::intake);
    }
    ASSERT_TRUE(done.wait_for(SpoolWriter::gather_target));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));  // woken, not timed out
    EXPECT_EQ(done.errors(), 0u);
    EXPECT_EQ(writer.stats().commits - commits_before, 1u);
}

// After a busy batch a lone write waits out the delay, once; then its own batch held one
// write, and the next lone write goes at once.
TEST_F(SpoolWriterTest, ALoneWriteWaitsForCompanyOnlyOnce) {
    constexpr auto delay = std::chrono::milliseconds(1000);
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool, delay);
    make_a_busy_batch(writer);

    auto timed_write = [&writer] {
        std::promise<std::error_code> acked;
        const auto start = std::chrono::steady_clock::now();
        writer.submit(put_op(new_queue_id()), [&](std::error_code ec) { acked.set_value(ec); },
                      SpoolWriter::Lane::intake);
        EXPECT_FALSE(acked.get_future().get());
        return std::chrono::steady_clock::now() - start;
    };
    EXPECT_GE(timed_write(), delay);
    EXPECT_LT(timed_write(), delay / 2);
}

TEST_F(SpoolWriterTest, GroupsConcurrentSubmissions) {
    constexpr int threads = 8, per_thread = 200;
    std::vector<std::vector<std::string>> ids(threads);
    for (auto& v : ids)
        for (int i = 0; i < per_thread; ++i) v.push_back(new_queue_id());
    std::uint64_t batches = 0, operations = 0;
    {
        Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
        SpoolWriter writer(spool);
        Completions done;
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> sessions;
        for (int t = 0; t < threads; ++t)
            sessions.emplace_back([&, t] {
                for (const auto& id : ids[t]) writer.submit(put_op(id), done.make());
            });
        for (auto& s : sessions) s.join();
        ASSERT_TRUE(done.wait_for(threads * per_thread));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        EXPECT_EQ(done.errors(), 0u);
        batches = writer.batches();
        operations = writer.operations();
        std::cout << "[ figures  ] " << operations << " operations in " << batches << " batches, "
                  << static_cast<int>(operations / seconds) << " msgs/s\n";
        EXPECT_EQ(operations, static_cast<std::uint64_t>(threads * per_thread));
        EXPECT_LT(batches * 10, operations);
        RecordProperty("batches", static_cast<int>(batches));
    }
    Spool reopened(spool_path(), map_256m, Spool::Mode::read_write);
    EXPECT_EQ(reopened.stats().messages, static_cast<std::uint64_t>(threads * per_thread));
    for (const auto& v : ids)
        for (const auto& id : v) ASSERT_EQ(reopened.find_content(id), content_for(id)) << id;
}

// Like SMTP sessions: each waits for its 250 before sending the next message.
TEST_F(SpoolWriterTest, GroupsSessionsThatWaitForEachCommit) {
    constexpr int sessions_n = 20, per_session = 50;
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    std::atomic<int> failures{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> sessions;
    for (int t = 0; t < sessions_n; ++t)
        sessions.emplace_back([&] {
            for (int i = 0; i < per_session; ++i) {
                std::promise<std::error_code> acked;
                writer.submit(put_op(new_queue_id()), [&](std::error_code ec) { acked.set_value(ec); });
                if (acked.get_future().get()) ++failures;
            }
        });
    for (auto& s : sessions) s.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(writer.operations(), static_cast<std::uint64_t>(sessions_n * per_session));
    EXPECT_LT(writer.batches() * 2, writer.operations());
    std::cout << "[ figures  ] " << writer.operations() << " acknowledged one at a time by " << sessions_n
              << " sessions in " << writer.batches() << " batches, "
              << static_cast<int>(writer.operations() / seconds) << " msgs/s\n";
    EXPECT_EQ(spool.stats().messages, static_cast<std::uint64_t>(sessions_n * per_session));
}

TEST_F(SpoolWriterTest, AFailingOperationDoesNotStopTheOthers) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    Gate gate;
    Completions done;
    writer.submit(gate.op(), done.make());
    gate.wait_entered();

    const auto a = new_queue_id(), b = new_queue_id(), c = new_queue_id(), d = new_queue_id();
    std::error_code ec_a, ec_b, ec_c, ec_d;
    writer.submit(put_op(a), done.make(&ec_a));
    // Writes, then fails: none of its writes may be committed.
    writer.submit(
        [&](SpoolWriteTxn& txn) {
            if (auto ec = txn.put_message(make_envelope(b), content_for(b))) return ec;
            if (auto ec = txn.remove_message(a)) return ec;  // sees a's write in the batch
            return std::error_code(SpoolError::corrupt);
        },
        done.make(&ec_b));
    writer.submit(
        [&](SpoolWriteTxn& txn) -> std::error_code {
            (void)txn.put_message(make_envelope(d), content_for(d));
            throw std::runtime_error("a bug in an operation");
        },
        done.make(&ec_d));
    writer.submit(put_op(c), done.make(&ec_c));
    gate.release();
    ASSERT_TRUE(done.wait_for(5));

    EXPECT_FALSE(ec_a);
    EXPECT_EQ(ec_b, SpoolError::corrupt);
    EXPECT_EQ(ec_d, SpoolError::io);
    EXPECT_FALSE(ec_c);
    EXPECT_EQ(spool.find_content(a), content_for(a));
    EXPECT_EQ(spool.find_content(c), content_for(c));
    EXPECT_FALSE(spool.find_envelope(b));
    EXPECT_FALSE(spool.find_content(b));
    EXPECT_FALSE(spool.find_envelope(d));
    EXPECT_EQ(spool.stats().messages, 2u);
    EXPECT_EQ(writer.batches(), 2u);  // the gate's, then a, b, d and c in one
    EXPECT_EQ(writer.operations(), 3u);               // gate, a, c
}

// A backlog of background writes (a failover's delivery records) delays an intake
// commit by one bounded batch, not by the whole backlog; the backlog keeps its order.
TEST_F(SpoolWriterTest, IntakeGoesBeforeABacklogOfBackgroundWrites) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    Gate gate;
    Completions done;
    std::mutex order_mutex;
    std::vector<std::string> order;  // completions, as the writer called them
    auto noting = [&](const std::string& name) {
        return [&, name, inner = done.make()](std::error_code ec) {
            {
                std::lock_guard lock(order_mutex);
                order.push_back(name);
            }
            inner(ec);
        };
    };
    writer.submit(gate.op(), noting("gate"));
    gate.wait_entered();
    constexpr std::size_t backlog = 1000;
    for (std::size_t i = 0; i < backlog; ++i) writer.submit(put_op(new_queue_id()), noting("bg" + std::to_string(i)));
    const auto id = new_queue_id();
    writer.submit(put_op(id), noting("intake"), SpoolWriter::Lane::intake);
    gate.release();
    ASSERT_TRUE(done.wait_for(backlog + 2));
    EXPECT_EQ(done.errors(), 0u);

    ASSERT_EQ(order.size(), backlog + 2);
    EXPECT_EQ(order[0], "gate");
    EXPECT_EQ(order[1], "intake");  // first in the first batch after the gate
    for (std::size_t i = 0; i < backlog; ++i) ASSERT_EQ(order[i + 2], "bg" + std::to_string(i));
    // the gate's batch, then the backlog at most max_batch_per_lane at a time
    const auto per = SpoolWriter::max_batch_per_lane;
    EXPECT_EQ(writer.batches(), 1u + (backlog + per - 1) / per);
    EXPECT_EQ(spool.find_content(id), content_for(id));
    EXPECT_EQ(spool.stats().messages, backlog + 1);
}

TEST_F(SpoolWriterTest, FullMapFailsOnlyWhatDoesNotFit) {
    const auto path = spool_path();
    std::vector<std::string> ids;
    std::vector<std::error_code> results(40);
    {
        Spool spool(path, 1ull << 20, Spool::Mode::read_write);
        SpoolWriter writer(spool);
        Gate gate;
        Completions done;
        writer.submit(gate.op(), done.make());
        gate.wait_entered();
        for (std::size_t i = 0; i < results.size(); ++i) {
            ids.push_back(new_queue_id());
            writer.submit(put_op(ids.back(), 64 << 10), done.make(&results[i]));
        }
        gate.release();
        ASSERT_TRUE(done.wait_for(results.size() + 1));
        // And once more, alone, with the map already full.
        std::error_code late;
        writer.submit(put_op(new_queue_id(), 64 << 10), done.make(&late));
        ASSERT_TRUE(done.wait_for(results.size() + 2));
        EXPECT_EQ(late, SpoolError::full);
    }
    std::size_t ok = 0, full = 0;
    Spool spool(path, 1ull << 20, Spool::Mode::read_write);
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (!results[i]) {
            ++ok;
            EXPECT_EQ(spool.find_content(ids[i]), content_for(ids[i], 64 << 10)) << ids[i];
        } else {
            EXPECT_EQ(results[i], SpoolError::full) << results[i].message();
            ++full;
            EXPECT_FALSE(spool.find_envelope(ids[i]));
        }
    }
    EXPECT_GT(ok, 2u);
    EXPECT_GT(full, 20u);
    EXPECT_EQ(spool.stats().messages, ok);
}

// Batch after batch into a map that fills up: near the end a whole batch no longer
// commits (LMDB needs pages for its free list at commit), and the writer falls back
// to one transaction per operation, keeping those that fit.
TEST_F(SpoolWriterTest, BatchesIntoAFillingMapKeepEverythingAcknowledged) {
    const auto path = spool_path();
    std::vector<std::string> ids;
    std::vector<std::error_code> results(40 * 50);
    {
        Spool spool(path, 1ull << 20, Spool::Mode::read_write);
        SpoolWriter writer(spool);
        Completions done;
        std::size_t submitted = 0;
        for (int round = 0; round < 40; ++round) {
            Gate gate;
            writer.submit(gate.op(), nullptr);
            gate.wait_entered();
            for (int i = 0; i < 50; ++i, ++submitted) {
                ids.push_back(new_queue_id());
                writer.submit(put_op(ids.back(), 1000), done.make(&results[submitted]));
            }
            gate.release();
            ASSERT_TRUE(done.wait_for(submitted));
        }
    }
    Spool spool(path, 1ull << 20, Spool::Mode::read_write);
    std::size_t ok = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (results[i]) {
            EXPECT_EQ(results[i], SpoolError::full) << results[i].message();
            EXPECT_FALSE(spool.find_envelope(ids[i]));
            continue;
        }
        ++ok;
        ASSERT_EQ(spool.find_content(ids[i]), content_for(ids[i], 1000)) << ids[i];
    }
    EXPECT_GT(ok, 100u);
    EXPECT_LT(ok, ids.size());
    EXPECT_EQ(spool.stats().messages, ok);
}

TEST_F(SpoolWriterTest, StopCompletesPendingWithClosed) {
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    SpoolWriter writer(spool);
    Gate gate;
    Completions done;
    std::error_code gate_ec;
    writer.submit(gate.op(), done.make(&gate_ec));
    gate.wait_entered();
    std::vector<std::string> ids;
    for (int i = 0; i < 10; ++i) {
        ids.push_back(new_queue_id());
        writer.submit(put_op(ids.back()), done.make());
    }
    std::thread stopper([&] { writer.stop(); });
    // Once stop() has begun, a submission is refused at once, on the caller's thread.
    // Probes queued before that are completed by the writer later, hence shared state.
    const auto me = std::this_thread::get_id();
    for (;;) {
        auto refused_here = std::make_shared<std::atomic<bool>>(false);
        writer.submit([](SpoolWriteTxn&) { return std::error_code{}; },
                      [refused_here, me](std::error_code ec) {
                          if (std::this_thread::get_id() == me && ec == SpoolError::closed) *refused_here = true;
                      });
        if (*refused_here) break;
        std::this_thread::yield();
    }
    gate.release();
    stopper.join();
    EXPECT_FALSE(gate_ec);
    EXPECT_EQ(done.count(), 11u);
    EXPECT_EQ(done.errors(), 10u);  // every queued put heard "closed"
    for (const auto& id : ids) EXPECT_FALSE(spool.find_envelope(id));
    writer.stop();  // twice is fine
}

TEST_F(SpoolWriterTest, ReadOnlySpoolAnswersIo) {
    { Spool spool(spool_path(), map_256m, Spool::Mode::read_write); }
    Spool spool(spool_path(), 0, Spool::Mode::read_only);
    SpoolWriter writer(spool);
    std::promise<std::error_code> result;
    writer.submit(put_op(new_queue_id()), [&](std::error_code ec) { result.set_value(ec); });
    EXPECT_EQ(result.get_future().get(), SpoolError::io);
}

// A child commits messages through the writer and reports each id the moment its
// completion fires (that is when intake would answer 250); the parent kills it with
// SIGKILL at a random point, reopens the spool and finds every reported message.
TEST_F(SpoolWriterTest, AcknowledgedMessagesSurviveSigkill) {
    // Five rounds of up to 8,000 messages of two pages each: a map of 256 MiB can fill
    // up, and a full spool's refusal would read as a failed commit here.
    constexpr std::uint64_t map_1g = 1ull << 30;
    const auto path = spool_path();
    std::mt19937 rng(std::random_device{}());
    std::size_t total_acked = 0;
    for (int round = 0; round < 5; ++round) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            try {
                Spool spool(path, map_1g, Spool::Mode::read_write);
                SpoolWriter writer(spool);
                std::vector<std::thread> sessions;
                for (int t = 0; t < 4; ++t)
                    sessions.emplace_back([&] {
                        for (int i = 0; i < 2000; ++i) {
                            auto id = new_queue_id();
                            writer.submit(put_op(id), [id, fd = fds[1]](std::error_code ec) {
                                const std::string line = (ec ? "E" : "") + id + "\n";
                                if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
                                    _exit(4);
                            });
                        }
                    });
                for (auto& s : sessions) s.join();
                for (;;) pause();  // wait to be killed
            } catch (...) {
                _exit(3);
            }
        }
        close(fds[1]);
        // The clock starts at the first acknowledgement, so the kill lands while the
        // writer is busy committing, not while the child is still starting.
        const auto kill_after = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng));
        const auto give_up = std::chrono::steady_clock::now() + 30s;
        std::optional<std::chrono::steady_clock::time_point> first_ack;
        std::string received;
        bool killed = false;
        char buf[4096];
        for (;;) {
            const auto now = std::chrono::steady_clock::now();
            if (!killed && ((first_ack && now - *first_ack >= kill_after) || now >= give_up)) {
                kill(pid, SIGKILL);
                killed = true;
            }
            pollfd p{fds[0], POLLIN, 0};
            if (poll(&p, 1, killed ? 1000 : 5) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (!(p.revents & (POLLIN | POLLHUP))) continue;
            const auto n = read(fds[0], buf, sizeof buf);
            if (n <= 0) break;  // EOF: the child is gone
            received.append(buf, static_cast<std::size_t>(n));
            if (!first_ack) first_ack = std::chrono::steady_clock::now();
        }
        if (!killed) kill(pid, SIGKILL);
        close(fds[0]);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

        // Only whole lines were acknowledged; a torn last line cannot happen (writes
        // under PIPE_BUF are atomic) but would be dropped, not trusted.
        std::vector<std::string> acked;
        std::size_t pos = 0;
        for (auto nl = received.find('\n'); nl != std::string::npos; pos = nl + 1, nl = received.find('\n', pos)) {
            const auto line = received.substr(pos, nl - pos);
            ASSERT_NE(line[0], 'E') << "a commit failed in the child: " << line;
            acked.push_back(line);
        }
        Spool spool(path, map_1g, Spool::Mode::read_write);
        for (const auto& id : acked) {
            ASSERT_TRUE(spool.find_envelope(id)) << "round " << round << ": acknowledged " << id << " is lost";
            ASSERT_EQ(spool.find_content(id), content_for(id)) << id;
        }
        total_acked += acked.size();
        EXPECT_GE(spool.stats().messages, total_acked);
        std::cout << "[ figures  ] round " << round << ": killed " << kill_after.count() << " ms after the first 250, "
                  << acked.size() << " acknowledged, all present\n";
    }
    EXPECT_GT(total_acked, 0u);
}

}  // namespace
}  // namespace edgerelay::queue
