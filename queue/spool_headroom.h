// Zero-filled room past the spool's last page, so that commits overwrite blocks the
// file already owns instead of growing the file.
//
// LMDB grows data.mdb by writing past its end. On ext4 (the reference disk's, measured
// without a journal) each such commit then allocates blocks and moves the file's end,
// and the commit's fdatasync has to write that file-system metadata as well as the
// pages: more writes and a longer wait for every 250 while the spool grows, which is
// exactly when a destination is down. With the file already written that far,
// fdatasync writes the pages alone. PostgreSQL zero-fills its WAL segments ahead of use
// for the same reason. fallocate() is not enough: its extents are "unwritten", and the
// first write into one changes metadata just the same (measured: no gain;
// docs/performance.md, "Room ahead of the spool").
//
// Each top-up writes what the room lacks (at least min_chunk, at most max_chunk) and
// only starts its writeback (sync_file_range), without waiting: the writer is held for
// a copy into the page cache, and the disk writes the zeros beside the next commits.
// Synced in steps of up to 8 MiB instead, each step held the writer (and every 250
// behind it) for the whole write; half a megabyte at a time, not waited for, was faster
// in 10 of 12 benchmark pairs. The next commit's fdatasync still waits for zeros being
// written (it waits for the whole file), so top-ups as small as the batches they
// follow spread that wait: 128 KiB at a time was faster again than half a megabyte in
// 12 of 16 pairs. A top-up as large as what the last batch used keeps up with larger
// messages, where a fixed 128 KiB would fall behind and leave commits growing the file.
//
// The zeros lie past the last page LMDB uses, where no reader looks and which LMDB
// writes only when it allocates those pages in a later commit. The fill runs inside a
// write transaction that is then aborted, so no commit, from this process or another,
// writes to the file meanwhile. It is an optimisation only: when it fails (a full disk)
// the spool works on exactly as before, growing the file itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <system_error>

namespace edgerelay::queue {

class Spool;

class SpoolHeadroom {
public:
    // The room kept ahead is a quarter of what the spool uses, between these bounds (a
    // new spool costs a megabyte of zeros). A batch that needs more than the room has
    // grows the file itself, as without the room.
    static constexpr std::uint64_t min_step = 1ull << 20;
    static constexpr std::uint64_t max_step = 8ull << 20;
    // What one top-up writes: the room missing, but at least min_chunk (about 14 of the
    // benchmark's messages, two or three of its batches: no top-up per batch for a few
    // kilobytes) and at most max_chunk (a restart or a grown step fills its room over
    // several batches instead of holding one for milliseconds).
    static constexpr std::uint64_t min_chunk = 128ull << 10;
    static constexpr std::uint64_t max_chunk = 1ull << 20;
    // After a failed fill, the next try waits this long (a full disk stays full a while).
    static constexpr std::chrono::seconds retry_after{30};

    explicit SpoolHeadroom(Spool& spool);

    // When less than one step of room is left past the last used page, writes zeros at
    // the end of the file (what is missing, min_chunk to max_chunk; never past the map
    // size) and starts their writeback. Call it between commits of this process's
    // writer. A failure truncates the file back to where it ended and is returned; the
    // spool is unharmed by it.
    std::error_code top_up();

    // Bytes of zeros written so far, and the fills that failed (for tests and metrics).
    std::uint64_t bytes_written() const { return bytes_written_; }
    std::uint64_t failures() const { return failures_; }

private:
    struct Extent {
        std::uint64_t used_end = 0;  // past the last page in use
        std::uint64_t map_size = 0;  // the file never grows past it
    };
    Extent extent() const;
    static std::uint64_t step_for(std::uint64_t used_end);

    Spool& spool_;
    std::uint64_t page_size_ = 0;
    // Where the file ended after our last look; LMDB moves it only by growing past it.
    std::uint64_t known_file_end_ = 0;
    std::chrono::steady_clock::time_point retry_at_{};
    std::uint64_t bytes_written_ = 0;
    std::uint64_t failures_ = 0;
};

}  // namespace edgerelay::queue
