// Room ahead of the spool: zeros written past the last page, never over a page in use,
// never past the map size, used by later commits without growing the file, and a
// failed fill that leaves the file as it was.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "queue/queue_id.h"
#include "queue/spool.h"
#include "queue/spool_headroom.h"
#include "tests/unit/queue/spool_test_messages.h"

namespace edgerelay::queue {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t map_64m = 64ull << 20;

using testing::content_for;
using testing::make_envelope;

class SpoolHeadroomTest : public testing::SpoolDirTest {
protected:
    SpoolHeadroomTest() : SpoolDirTest("headroom") {}
    std::uint64_t file_size() const { return fs::file_size(dir_ / "spool" / "data.mdb"); }
    std::string file_bytes() const {
        std::ifstream in(dir_ / "spool" / "data.mdb", std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
};

std::vector<std::string> put_messages(Spool& spool, int count, std::size_t size = 4096) {
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
        ids.push_back(new_queue_id());
        const auto& id = ids.back();
        EXPECT_FALSE(spool.write([&](SpoolWriteTxn& txn) { return txn.put_message(make_envelope(id), content_for(id, size)); }));
    }
    return ids;
}

void expect_all_there(Spool& spool, const std::vector<std::string>& ids, std::size_t size = 4096) {
    for (const auto& id : ids) {
        const auto content = spool.find_content(id);
        ASSERT_TRUE(content) << id;
        EXPECT_EQ(*content, content_for(id, size)) << id;
    }
}

// Tops up as the writer does after each batch, until the room is whole; returns the
// calls that wrote.
int fill_room(SpoolHeadroom& headroom) {
    int writes = 0;
    for (int i = 0; i < 100; ++i) {
        const auto before = headroom.bytes_written();
        EXPECT_FALSE(headroom.top_up());
        if (headroom.bytes_written() == before) break;
        ++writes;
    }
    return writes;
}

std::uint64_t step_for(std::uint64_t used) {
    return std::clamp(used / 4, SpoolHeadroom::min_step, SpoolHeadroom::max_step);
}

TEST_F(SpoolHeadroomTest, ATopUpWritesTheMissingRoomAsZeros) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    const auto before = file_size();
    const auto used = spool.stats().used_bytes;
    ASSERT_LE(used, before);

    SpoolHeadroom headroom(spool);
    ASSERT_FALSE(headroom.top_up());
    const auto after = file_size();
    // A new spool lacks at most a megabyte (its step): one top-up writes all of it.
    const auto missing = used + step_for(used) - before;
    ASSERT_LE(missing, SpoolHeadroom::max_chunk);
    EXPECT_EQ(after, before + std::max(missing, SpoolHeadroom::min_chunk));
    EXPECT_EQ(headroom.bytes_written(), after - before);
    EXPECT_EQ(headroom.failures(), 0u);
    const auto bytes = file_bytes();
    ASSERT_EQ(bytes.size(), after);
    EXPECT_EQ(bytes.find_first_not_of('\0', before), std::string::npos) << "the room holds only zeros";
}

TEST_F(SpoolHeadroomTest, FillsItsRoomThenStopsAndAFewMessagesCostOneSmallTopUp) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    SpoolHeadroom headroom(spool);
    EXPECT_EQ(fill_room(headroom), 1);
    const auto used = spool.stats().used_bytes;
    EXPECT_GE(file_size(), used + step_for(used));
    EXPECT_LT(file_size(), used + step_for(used) + SpoolHeadroom::min_chunk);

    // A few messages use a little of the room: one top-up of min_chunk puts it back.
    put_messages(spool, 4);
    const auto written = headroom.bytes_written();
    EXPECT_EQ(fill_room(headroom), 1);
    EXPECT_EQ(headroom.bytes_written(), written + SpoolHeadroom::min_chunk);
    const auto size = file_size();
    EXPECT_FALSE(headroom.top_up());
    EXPECT_EQ(file_size(), size);
}

TEST_F(SpoolHeadroomTest, ALargeShortfallIsFilledAtMostMaxChunkAtATime) {
    // 40 MiB of messages committed at once, before the room is first kept: the step is
    // then 8 MiB, nearly all of it missing.
    constexpr std::uint64_t map_256m = 256ull << 20;
    Spool spool(spool_path(), map_256m, Spool::Mode::read_write);
    std::vector<std::string> ids;
    for (int i = 0; i < 640; ++i) ids.push_back(new_queue_id());
    ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) {
        for (const auto& id : ids)
            if (auto ec = txn.put_message(make_envelope(id), content_for(id, 64 * 1024))) return ec;
        return std::error_code();
    }));
    const auto used = spool.stats().used_bytes;
    ASSERT_EQ(step_for(used), SpoolHeadroom::max_step);
    const auto missing = used + SpoolHeadroom::max_step - file_size();
    ASSERT_GT(missing, 4 * SpoolHeadroom::max_chunk);

    SpoolHeadroom headroom(spool);
    ASSERT_FALSE(headroom.top_up());
    EXPECT_EQ(headroom.bytes_written(), SpoolHeadroom::max_chunk) << "one top-up holds the writer for a megabyte at most";
    const int writes = 1 + fill_room(headroom);
    EXPECT_EQ(writes, static_cast<int>((missing + SpoolHeadroom::max_chunk - 1) / SpoolHeadroom::max_chunk));
    EXPECT_GE(file_size(), used + SpoolHeadroom::max_step);
    EXPECT_LT(file_size(), used + SpoolHeadroom::max_step + SpoolHeadroom::min_chunk);
    expect_all_there(spool, ids, 64 * 1024);
}

TEST_F(SpoolHeadroomTest, CommitsUseTheRoomWithoutGrowingTheFile) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    SpoolHeadroom headroom(spool);
    fill_room(headroom);
    const auto size = file_size();

    // About half a megabyte of messages: inside the megabyte of room.
    const auto ids = put_messages(spool, 64);
    EXPECT_EQ(file_size(), size) << "the commits wrote into the room, not past the end";
    EXPECT_GT(spool.stats().used_bytes, SpoolHeadroom::min_step / 4);
    expect_all_there(spool, ids);
}

TEST_F(SpoolHeadroomTest, PagesInUseAreNeverTouched) {
    std::vector<std::string> ids;
    std::string before;
    {
        Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
        ids = put_messages(spool, 40);
        before = file_bytes();
        SpoolHeadroom headroom(spool);
        ASSERT_FALSE(headroom.top_up());
        const auto after = file_bytes();
        ASSERT_GT(after.size(), before.size());
        EXPECT_EQ(after.compare(0, before.size(), before), 0) << "bytes before the old end changed";
    }
    // Reopened, the spool reads as before and takes more.
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    expect_all_there(spool, ids);
    const auto more = put_messages(spool, 8);
    expect_all_there(spool, more);
}

TEST_F(SpoolHeadroomTest, TopsUpAgainWhenCommitsNearTheEnd) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    SpoolHeadroom headroom(spool);
    fill_room(headroom);
    std::vector<std::string> ids;
    // Each round uses most of the room, then tops it up again; the step grows with the
    // spool.
    for (int round = 0; round < 4; ++round) {
        for (const auto& id : put_messages(spool, 40, 16 * 1024)) ids.push_back(id);
        EXPECT_GE(fill_room(headroom), 1) << "round " << round;
        const auto used = spool.stats().used_bytes;
        EXPECT_GE(file_size(), used + step_for(used)) << "round " << round;
        EXPECT_LT(file_size(), used + step_for(used) + SpoolHeadroom::min_chunk) << "round " << round;
    }
    EXPECT_GT(headroom.bytes_written(), SpoolHeadroom::min_step);
    expect_all_there(spool, ids, 16 * 1024);
}

TEST_F(SpoolHeadroomTest, NeverGrowsPastTheMapSize) {
    constexpr std::uint64_t small_map = 512 * 1024;
    Spool spool(spool_path(), small_map, Spool::Mode::read_write);
    SpoolHeadroom headroom(spool);
    fill_room(headroom);
    EXPECT_EQ(file_size(), small_map);
    ASSERT_FALSE(headroom.top_up());
    EXPECT_EQ(file_size(), small_map);
    // The whole map is still LMDB's to fill.
    const auto ids = put_messages(spool, 16);
    expect_all_there(spool, ids);
}

TEST_F(SpoolHeadroomTest, AFailedFillLeavesTheFileAsItWasAndWaitsBeforeTryingAgain) {
    Spool spool(spool_path(), map_64m, Spool::Mode::read_write);
    const auto ids = put_messages(spool, 4);
    const auto before = file_bytes();

    // A file-size limit stands in for a full disk: the write past it fails (EFBIG)
    // after part of the zeros went in.
    rlimit old_limit{};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = old_limit;
    limit.rlim_cur = before.size() + 64 * 1024;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
    SpoolHeadroom headroom(spool);
    const auto failed = headroom.top_up();
    const auto after_failure = file_bytes();
    const auto second = headroom.top_up();  // within retry_after: not tried
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    std::signal(SIGXFSZ, old_handler);

    EXPECT_TRUE(failed == std::errc::file_too_large) << failed.message();
    EXPECT_EQ(after_failure, before) << "the partial zeros are truncated away";
    EXPECT_FALSE(second);
    EXPECT_EQ(headroom.failures(), 1u);
    EXPECT_EQ(headroom.bytes_written(), 0u);
    EXPECT_EQ(file_bytes(), before);
    // The spool works on without the room.
    expect_all_there(spool, ids);
    const auto more = put_messages(spool, 4);
    expect_all_there(spool, more);
}

TEST_F(SpoolHeadroomTest, AReadOnlySpoolIsLeftAlone) {
    { Spool writer(spool_path(), map_64m, Spool::Mode::read_write); }
    const auto size = file_size();
    Spool reader(spool_path(), map_64m, Spool::Mode::read_only);
    SpoolHeadroom headroom(reader);
    EXPECT_FALSE(headroom.top_up());
    EXPECT_EQ(file_size(), size);
    EXPECT_EQ(headroom.bytes_written(), 0u);
}

}  // namespace
}  // namespace edgerelay::queue
