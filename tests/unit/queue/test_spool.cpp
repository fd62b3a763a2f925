// The LMDB spool: writes, snapshot reads, order, reopening, read-only use beside a
// writing process, and a full map.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "queue/queue_id.h"
#include "queue/spool.h"

namespace edgerelay::queue {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t map_64m = 64ull << 20;

// A fresh directory per test, removed afterwards.
class SpoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgerelay-spool-XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string spool_path() const { return (dir_ / "spool").string(); }
    fs::path dir_;
};

Envelope make_envelope(const std::string& id, std::size_t recipients = 2) {
    Envelope e;
    e.queue_id = id;
    e.arrival = now_micros();
    e.sender = "sender@example.org";
    for (std::size_t i = 0; i < recipients; ++i) e.recipients.push_back({"rcpt" + std::to_string(i) + "@rockerduck.example"});
    e.message_id = id + "@edge.example.net";
    e.size = 100;
    return e;
}

std::string content_for(const std::string& id, std::size_t size = 100) {
    std::string c;
    c.reserve(size);
    while (c.size() < size) c += "Subject: " + id + "\r\n";
    c.resize(size);
    return c;
}

std::error_code put(Spool& spool, const std::string& id, std::size_t size = 100) {
    return spool.write([&](SpoolWriteTxn& txn) { return txn.put_message(make_envelope(id), content_for(id, size)); });
}

TEST_F(SpoolTest, CreatesItsDirectoryAndParents) {
    const auto path = (dir_ / "a" / "b" / "spool").string();
    Spool spool(path, map_64m, Spool::Mode::read_write);
    EXPECT_TRUE(fs::exists(fs::path(path) / "data.mdb"));
    EXPECT_EQ(spool.path(), path);
    const auto st = spool.stats();
    EXPECT_EQ(st.messages, 0u);
    EXPECT_EQ(st.map_size, map_64m);
    EXPECT_GT(st.used_bytes, 0u);
}

TEST_F(SpoolTest, PutFindContentRemove) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    const auto id = new_queue_id();
    const auto env = make_envelope(id, 3);
    const std::string content = std::string("Subject: binary \0\xFF\r\n\r\nbody\r\n", 27);
    ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) { return txn.put_message(env, content); }));

    auto found = spool.find_envelope(id);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->queue_id, id);
    EXPECT_EQ(found->recipients.size(), 3u);
    EXPECT_EQ(found->message_id, env.message_id);
    EXPECT_EQ(spool.find_content(id), content);
    EXPECT_EQ(spool.stats().messages, 1u);
    EXPECT_FALSE(spool.find_envelope("FFFFFFFFFFFFFFFF"));
    EXPECT_FALSE(spool.find_content("FFFFFFFFFFFFFFFF"));
    EXPECT_FALSE(spool.find_envelope(""));

    // An update changes the envelope only.
    auto updated = *found;
    updated.state = MessageState::deferred;
    updated.attempts = 1;
    updated.recipients[0].state = RecipientState::delivered;
    updated.last_reply = "451 4.3.0 try later";
    ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) { return txn.put_envelope(updated); }));
    found = spool.find_envelope(id);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->state, MessageState::deferred);
    EXPECT_EQ(found->recipients[0].state, RecipientState::delivered);
    EXPECT_EQ(found->last_reply, "451 4.3.0 try later");
    EXPECT_EQ(spool.find_content(id), content);

    ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) { return txn.remove_message(id); }));
    EXPECT_FALSE(spool.find_envelope(id));
    EXPECT_FALSE(spool.find_content(id));
    EXPECT_EQ(spool.stats().messages, 0u);

    // Gone means gone: no update brings the envelope back, a second remove says so.
    EXPECT_EQ(spool.write([&](SpoolWriteTxn& txn) { return txn.put_envelope(updated); }), SpoolError::not_found);
    EXPECT_EQ(spool.write([&](SpoolWriteTxn& txn) { return txn.remove_message(id); }), SpoolError::not_found);
    EXPECT_FALSE(spool.find_envelope(id));
}

TEST_F(SpoolTest, WriteTxnSeesItsOwnChangesAndAnErrorAbortsThemAll) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    const auto a = new_queue_id(), b = new_queue_id();
    auto ec = spool.write([&](SpoolWriteTxn& txn) {
        if (auto e = txn.put_message(make_envelope(a), "a")) return e;
        EXPECT_TRUE(txn.find_envelope(a));
        if (auto e = txn.put_message(make_envelope(b), "b")) return e;
        return std::error_code(SpoolError::io);
    });
    EXPECT_EQ(ec, SpoolError::io);
    EXPECT_FALSE(spool.find_envelope(a));
    EXPECT_FALSE(spool.find_envelope(b));
    EXPECT_EQ(spool.stats().messages, 0u);

    EXPECT_THROW(spool.write([&](SpoolWriteTxn& txn) -> std::error_code {
        (void)txn.put_message(make_envelope(a), "a");
        throw std::logic_error("bug");
    }),
                 std::logic_error);
    EXPECT_FALSE(spool.find_envelope(a));
    // The spool still works after both.
    EXPECT_FALSE(put(spool, a));
    EXPECT_TRUE(spool.find_envelope(a));
}

TEST_F(SpoolTest, RejectsKeysLmdbCannotHold) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    EXPECT_TRUE(spool.write([&](SpoolWriteTxn& txn) { return txn.put_message(make_envelope(""), "x"); }));
    EXPECT_TRUE(spool.write([&](SpoolWriteTxn& txn) { return txn.put_message(make_envelope(std::string(600, 'A')), "x"); }));
    EXPECT_FALSE(spool.find_envelope(std::string(600, 'A')));
    EXPECT_EQ(spool.stats().messages, 0u);
}

TEST_F(SpoolTest, ForEachVisitsInQueueIdOrderAndStops) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    std::vector<std::string> ids;
    for (int i = 0; i < 200; ++i) ids.push_back(new_queue_id());
    auto shuffled = ids;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
    // Several transactions, inserted out of order.
    for (std::size_t i = 0; i < shuffled.size(); i += 50)
        ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) {
            for (std::size_t j = i; j < i + 50; ++j)
                if (auto ec = txn.put_message(make_envelope(shuffled[j]), content_for(shuffled[j]))) return ec;
            return std::error_code{};
        }));

    std::vector<std::string> seen;
    spool.for_each_envelope([&](const Envelope& e) {
        seen.push_back(e.queue_id);
        return true;
    });
    EXPECT_EQ(seen, ids);

    seen.clear();
    spool.for_each_envelope([&](const Envelope& e) {
        seen.push_back(e.queue_id);
        return seen.size() < 10;
    });
    EXPECT_EQ(seen.size(), 10u);
    EXPECT_EQ(seen.back(), ids[9]);
    EXPECT_EQ(spool.stats().messages, 200u);
}

TEST_F(SpoolTest, DataSurvivesCloseAndReopen) {
    std::vector<std::string> ids;
    {
        Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
        for (int i = 0; i < 50; ++i) {
            ids.push_back(new_queue_id());
            ASSERT_FALSE(put(spool, ids.back(), 4096));
        }
    }
    {
        Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
        EXPECT_EQ(spool.stats().messages, 50u);
        for (const auto& id : ids) {
            ASSERT_TRUE(spool.find_envelope(id)) << id;
            EXPECT_EQ(spool.find_content(id), content_for(id, 4096));
        }
        ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) { return txn.remove_message(ids[0]); }));
    }
    Spool reader(spool_path(), 0, Spool::Mode::read_only);
    EXPECT_EQ(reader.stats().messages, 49u);
    EXPECT_FALSE(reader.find_envelope(ids[0]));
    EXPECT_EQ(reader.find_content(ids[1]), content_for(ids[1], 4096));
}

TEST_F(SpoolTest, ReadOnlyWithoutASpoolThrowsNamingThePath) {
    const auto path = (dir_ / "missing").string();
    try {
        Spool spool(path, map_64m, Spool::Mode::read_only);
        FAIL() << "opened a spool that does not exist";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(path));  // read-only never creates anything
}

TEST_F(SpoolTest, OpenFailureThrowsNamingThePath) {
    const auto file = dir_ / "plain-file";
    { std::ofstream(file) << "not a directory"; }
    const auto path = (file / "spool").string();
    try {
        Spool spool(path, map_64m, Spool::Mode::read_write);
        FAIL() << "opened a spool under a file";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST_F(SpoolTest, ReadOnlyRefusesWrites) {
    { Spool spool(spool_path(), map_64m, Spool::Mode::read_write); }
    Spool reader(spool_path(), 0, Spool::Mode::read_only);
    EXPECT_TRUE(put(reader, new_queue_id()));
    EXPECT_EQ(reader.stats().messages, 0u);
}

// edgerelayctl reads while edgerelayd writes: another process holds the environment
// open read-write the whole time, and each read sees its latest commit.
TEST_F(SpoolTest, ReadOnlyBesideAWritingProcess) {
    int to_parent[2], to_child[2];
    ASSERT_EQ(pipe(to_parent), 0);
    ASSERT_EQ(pipe(to_child), 0);
    const auto path = spool_path();
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(new_queue_id());

    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(to_parent[0]);
        close(to_child[1]);
        int code = 0;
        try {
            Spool spool(path, map_64m, Spool::Mode::read_write);
            char c;
            for (int round = 0; round < 2 && code == 0; ++round) {
                for (int i = round * 10; i < round * 10 + 10; ++i)
                    if (put(spool, ids[i], 4096)) code = 2;
                if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1) code = 3;
            }
        } catch (...) {
            code = 1;
        }
        _exit(code);
    }
    close(to_parent[1]);
    close(to_child[0]);
    // Whatever happens below, the child is not left behind.
    struct Reap {
        pid_t pid;
        int fds[2];
        int status = -1;
        ~Reap() {
            for (int fd : fds) close(fd);
            if (status == -1) {
                kill(pid, SIGKILL);
                waitpid(pid, nullptr, 0);
            }
        }
    } reap{pid, {to_parent[0], to_child[1]}};

    char c;
    ASSERT_EQ(read(to_parent[0], &c, 1), 1);
    Spool reader(path, 0, Spool::Mode::read_only);  // the writer has it open now
    EXPECT_EQ(reader.stats().messages, 10u);
    EXPECT_EQ(reader.find_content(ids[3]), content_for(ids[3], 4096));
    EXPECT_FALSE(reader.find_envelope(ids[15]));
    EXPECT_TRUE(put(reader, new_queue_id()));

    ASSERT_EQ(write(to_child[1], "x", 1), 1);
    ASSERT_EQ(read(to_parent[0], &c, 1), 1);
    EXPECT_EQ(reader.stats().messages, 20u);  // a new snapshot per read
    ASSERT_TRUE(reader.find_envelope(ids[15]));
    std::size_t visited = 0;
    reader.for_each_envelope([&](const Envelope& e) {
        EXPECT_EQ(e.queue_id, ids[visited]);
        ++visited;
        return true;
    });
    EXPECT_EQ(visited, 20u);

    ASSERT_EQ(write(to_child[1], "x", 1), 1);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    reap.status = status;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    // The reader still works once the writer is gone.
    EXPECT_EQ(reader.stats().messages, 20u);
}

TEST_F(SpoolTest, FullMapSaysFullAndKeepsWhatItHas) {
    const auto path = spool_path();
    std::vector<std::string> kept;
    std::error_code last;
    {
        Spool spool(path, 1ull << 20, Spool::Mode::read_write);
        for (int i = 0; i < 100; ++i) {
            const auto id = new_queue_id();
            last = put(spool, id, 64 << 10);
            if (last) break;
            kept.push_back(id);
        }
        EXPECT_EQ(last, SpoolError::full);
        EXPECT_GT(kept.size(), 2u);
        EXPECT_LT(kept.size(), 16u);
        for (const auto& id : kept) EXPECT_EQ(spool.find_content(id), content_for(id, 64 << 10)) << id;
        // Still full for the next one; small updates and removals still work.
        EXPECT_EQ(put(spool, new_queue_id(), 64 << 10), SpoolError::full);
        ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) { return txn.remove_message(kept.front()); }));
        kept.erase(kept.begin());
        EXPECT_EQ(spool.stats().messages, kept.size());
        EXPECT_LE(spool.stats().used_bytes, spool.stats().map_size);
    }
    Spool spool(path, 1ull << 20, Spool::Mode::read_write);
    EXPECT_EQ(spool.stats().messages, kept.size());
    for (const auto& id : kept) EXPECT_EQ(spool.find_content(id), content_for(id, 64 << 10)) << id;
}

TEST_F(SpoolTest, StatsCountMessagesAndBytes) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    const auto empty = spool.stats();
    for (int i = 0; i < 100; ++i) ASSERT_FALSE(put(spool, new_queue_id(), 4096));
    const auto st = spool.stats();
    EXPECT_EQ(st.messages, 100u);
    EXPECT_EQ(st.map_size, map_64m);
    EXPECT_GE(st.used_bytes, empty.used_bytes + 100 * 4096);
    EXPECT_LT(st.used_bytes, map_64m);
}

}  // namespace
}  // namespace edgerelay::queue
