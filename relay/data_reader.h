// The message-data reader for DATA (dot-stuffed, ends at CRLF.CRLF) and BDAT chunks
// (counted bytes), without I/O. It checks what RFC 5321 and the smuggling attacks
// require: a bare CR or bare LF anywhere, a text line over 1000 octets (CRLF included,
// RFC 5321 4.5.3.1.6), and the size limit. After an error it keeps consuming until the
// end of the data, storing nothing more, so the session stays in sync with the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgerelay::relay {

enum class DataError { none, bare_cr_or_lf, line_too_long, too_big };

class DataReader {
public:
    enum class Mode { dot_stuffed, chunked };

    DataReader(Mode mode, std::uint64_t max_size);

    // Feeds bytes. Returns how many were consumed; in dot_stuffed mode consumption
    // stops right after the terminating CRLF.CRLF (the rest belongs to the next
    // command). In chunked mode everything given is consumed: the session hands over
    // exactly the chunk's bytes.
    std::size_t feed(std::string_view bytes);

    bool finished() const { return finished_; }  // dot_stuffed: terminator seen
    // chunked: the session calls this after the LAST chunk; checks a dangling CR.
    void finish_chunks();

    DataError error() const { return error_; }
    std::uint64_t size() const { return size_; }  // octets of content (unstuffed)
    // The content without the terminator and with dots unstuffed; every line ends
    // in CRLF. Empty after an error.
    std::string& content() { return content_; }

private:
    void fail(DataError e);  // records the first error and frees the content

    Mode mode_;
    std::uint64_t max_size_;
    std::string content_;
    std::uint64_t size_ = 0;
    std::size_t line_length_ = 0;  // octets of the current line so far
    bool after_cr_ = false;        // the previous octet was CR
    // dot_stuffed only: where we are relative to a line start
    enum class LineStart { yes, dot, dot_cr, no } line_start_ = LineStart::yes;
    bool finished_ = false;
    DataError error_ = DataError::none;
};

}  // namespace edgerelay::relay
