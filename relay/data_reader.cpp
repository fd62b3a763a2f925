// The message-data reader: DATA's dot-stuffed stream (RFC 5321 4.2.5, 4.5.2; ends at
// CRLF "." CRLF) and BDAT's counted chunks (RFC 3030), checked as they arrive.
//
// A line ends only at CR LF. A bare CR or LF is an error but never ends a line, so the
// end of data is only ever a strict CRLF "." CRLF: text an upstream MTA passed on as
// message content ("\n.\n", "\r\n.\n", "\r.\r") can never end our DATA and have what
// follows run as commands (SMTP smuggling, 2023).
//
// Accounting: a line's length counts octets as received, before dot-unstuffing, CRLF
// included, so a line errs at its 1001st octet. The size counts content octets
// (unstuffed, terminator excluded). Each error is placed at the octet where it becomes
// certain (a bare CR at the octet after it) and the earliest wins, ties in the order
// bare CR/LF, line length, size: the result never depends on how the stream was split
// across feed() calls.
#include "relay/data_reader.h"

#include <cstring>

namespace edgerelay::relay {
namespace {

constexpr std::uint64_t kMaxLine = 1000;  // RFC 5321 4.5.3.1.6, CRLF included

// How many more octets fit under limit when used are taken.
std::uint64_t room(std::uint64_t used, std::uint64_t limit) { return used < limit ? limit - used : 0; }

}  // namespace

DataReader::DataReader(Mode mode, std::uint64_t max_size) : mode_(mode), max_size_(max_size) {
    if (mode_ == Mode::chunked) line_start_ = LineStart::no;  // no dot handling at all
}

void DataReader::fail(DataError e) {
    if (error_ != DataError::none) return;
    error_ = e;
    std::string().swap(content_);
}

std::size_t DataReader::feed(std::string_view bytes) {
    if (finished_) return 0;
    if (mode_ == Mode::chunked && error_ != DataError::none) {
        size_ += bytes.size();  // nothing more to check or keep; just stay in step
        return bytes.size();
    }
    const char* const begin = bytes.data();
    const char* const end = begin + bytes.size();
    const char* p = begin;
    const char* run = begin;  // content not yet appended: [run, p), one append per run

    auto flush = [&](const char* to) {
        if (error_ == DataError::none && to > run) content_.append(run, static_cast<std::size_t>(to - run));
    };

    // Consumes from p (mid-line) through the next LF, or to the end of the input.
    auto scan = [&](const char* from) -> const char* {
        const auto* lf = static_cast<const char*>(std::memchr(from, '\n', static_cast<std::size_t>(end - from)));
        const char* const seg_end = lf ? lf + 1 : end;
        const auto len = static_cast<std::uint64_t>(seg_end - from);
        const bool crlf = lf && (lf > from ? lf[-1] == '\r' : after_cr_);
        if (error_ == DataError::none) {
            const char* bare = nullptr;
            if (after_cr_ && *from != '\n') {
                bare = from;
            } else {
                // Every CR but one right before the LF (or at the very end, judged by
                // the next octet) is bare.
                const char* limit = lf ? lf : end;
                const auto* cr = static_cast<const char*>(std::memchr(from, '\r', static_cast<std::size_t>(limit - from)));
                if (cr && cr + 1 < limit)
                    bare = cr + 1;
                else if (lf && !crlf)
                    bare = lf;
            }
            const std::uint64_t line_room = room(line_length_, kMaxLine);
            const char* too_long = len > line_room ? from + line_room : nullptr;
            const std::uint64_t size_room = room(size_, max_size_);
            const char* too_big = len > size_room ? from + size_room : nullptr;
            if (bare && (!too_long || bare <= too_long) && (!too_big || bare <= too_big))
                fail(DataError::bare_cr_or_lf);
            else if (too_long && (!too_big || too_long <= too_big))
                fail(DataError::line_too_long);
            else if (too_big)
                fail(DataError::too_big);
        }
        line_length_ += len;
        size_ += len;
        if (lf) {
            after_cr_ = false;
            if (crlf) {
                line_length_ = 0;
                if (mode_ == Mode::dot_stuffed) line_start_ = LineStart::yes;
            }
        } else {
            after_cr_ = end[-1] == '\r';
        }
        return seg_end;
    };

    while (p < end) {
        switch (line_start_) {
        case LineStart::yes:
            if (*p == '.') {  // either the terminator or a stuffed dot: never content
                flush(p);
                run = ++p;
                line_length_ = 1;
                line_start_ = LineStart::dot;
                continue;
            }
            line_start_ = LineStart::no;
            break;
        case LineStart::dot:
            if (*p == '\r') {
                run = ++p;
                line_length_ = 2;
                line_start_ = LineStart::dot_cr;
                continue;
            }
            line_start_ = LineStart::no;  // the dot was stuffing; the line goes on from here
            break;
        case LineStart::dot_cr:
            if (*p == '\n') {
                finished_ = true;
                return static_cast<std::size_t>(p + 1 - begin);
            }
            // ".\r" then not LF: a line holding a bare CR (content "\r"); scan() reports
            // it at this octet, unless that CR already broke the size limit.
            if (size_ >= max_size_) fail(DataError::too_big);
            ++size_;
            after_cr_ = true;
            line_start_ = LineStart::no;
            break;
        case LineStart::no:
            break;
        }
        p = scan(p);
    }
    flush(p);
    return bytes.size();
}

void DataReader::finish_chunks() {
    if (after_cr_) fail(DataError::bare_cr_or_lf);  // the last chunk ended in a lone CR
    after_cr_ = false;
    finished_ = true;
}

}  // namespace edgerelay::relay
