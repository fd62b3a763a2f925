#include "queue/spool_headroom.h"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "queue/spool.h"

namespace edgerelay::queue {

namespace {

std::error_code last_os_error() { return {errno, std::system_category()}; }

// Writes zeros over [from, to) of fd, a megabyte per system call.
std::error_code write_zeros(int fd, std::uint64_t from, std::uint64_t to) {
    static const std::array<char, 64 * 1024> zeros{};
    std::array<iovec, 16> iov;
    iov.fill(iovec{const_cast<char*>(zeros.data()), zeros.size()});
    while (from < to) {
        std::uint64_t left = to - from;
        int count = 0;
        for (; count < static_cast<int>(iov.size()) && left > 0; ++count) {
            iov[count].iov_len = std::min<std::uint64_t>(left, zeros.size());
            left -= iov[count].iov_len;
        }
        const ssize_t n = pwritev(fd, iov.data(), count, static_cast<off_t>(from));
        if (n < 0) {
            if (errno == EINTR) continue;
            return last_os_error();
        }
        if (n == 0) return std::make_error_code(std::errc::io_error);
        from += static_cast<std::uint64_t>(n);
    }
    return {};
}

}  // namespace

SpoolHeadroom::SpoolHeadroom(Spool& spool) : spool_(spool) {
    MDB_stat st{};
    mdb_env_stat(spool_.env_, &st);
    page_size_ = st.ms_psize;
}

std::uint64_t SpoolHeadroom::step_for(std::uint64_t used_end) {
    return std::clamp(used_end / 4, min_step, max_step);
}

SpoolHeadroom::Extent SpoolHeadroom::extent() const {
    MDB_envinfo info{};
    mdb_env_info(spool_.env_, &info);
    return Extent{(static_cast<std::uint64_t>(info.me_last_pgno) + 1) * page_size_,
                  static_cast<std::uint64_t>(info.me_mapsize)};
}

std::error_code SpoolHeadroom::top_up() {
    if (spool_.mode_ == Spool::Mode::read_only) return {};
    const auto now = std::chrono::steady_clock::now();
    if (now < retry_at_) return {};
    // The quick look, without a lock, after every batch: the file only ever grows, so
    // enough room past our last look is enough room now.
    {
        const Extent e = extent();
        if (known_file_end_ >= std::min(e.used_end + step_for(e.used_end), e.map_size)) return {};
    }

    // The write lock: no commit writes to the file while we do.
    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(spool_.env_, nullptr, 0, &txn); rc != 0) {
        ++failures_;
        retry_at_ = now + retry_after;
        return Spool::error_from_lmdb(rc);
    }
    const Extent e = extent();
    const std::uint64_t step = step_for(e.used_end);
    int fd = -1;
    struct stat st {};
    std::error_code ec;
    if (mdb_env_get_fd(spool_.env_, &fd) != 0 || fstat(fd, &st) != 0) {
        ec = fd < 0 ? std::make_error_code(std::errc::bad_file_descriptor) : last_os_error();
    } else {
        const auto file_end = static_cast<std::uint64_t>(st.st_size);
        known_file_end_ = file_end;
        const std::uint64_t wanted_end = std::min(e.used_end + step, e.map_size);
        if (file_end < wanted_end) {
            const std::uint64_t amount = std::clamp(wanted_end - file_end, min_chunk, max_chunk);
            const std::uint64_t target = std::min(file_end + amount, e.map_size);
            ec = write_zeros(fd, file_end, target);
            if (ec) {
                // Give the disk back: LMDB may need those blocks for its own pages.
                if (ftruncate(fd, static_cast<off_t>(file_end)) != 0) {
                    // The zeros stay past the last page, harmless; the error above is the news.
                }
            } else {
                // Only a hint to write them now rather than in the next commit's sync;
                // where it is not supported, that sync writes them.
                (void)sync_file_range(fd, static_cast<off_t>(file_end), static_cast<off_t>(target - file_end),
                                      SYNC_FILE_RANGE_WRITE);
                known_file_end_ = target;
                bytes_written_ += target - file_end;
            }
        }
    }
    mdb_txn_abort(txn);
    if (ec) {
        ++failures_;
        retry_at_ = now + retry_after;
    }
    return ec;
}

}  // namespace edgerelay::queue
