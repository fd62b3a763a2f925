// DataReader: DATA (dot-stuffed) and BDAT (chunked) streams, checked against a plain
// octet-by-octet model and fed at every split point, since the network splits anywhere.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "relay/data_reader.h"

using edgerelay::relay::DataError;
using edgerelay::relay::DataReader;
using Mode = DataReader::Mode;

namespace {

constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

struct Outcome {
    std::string content;
    DataError error = DataError::none;
    bool finished = false;
    std::size_t consumed = 0;
    std::uint64_t size = 0;

    bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    return os << "{content=" << testing::PrintToString(o.content) << " error=" << static_cast<int>(o.error)
              << " finished=" << o.finished << " consumed=" << o.consumed << " size=" << o.size << "}";
}

// Feeds input cut at the given offsets (ascending). Chunked: finish_chunks() at the end.
Outcome drive(Mode mode, std::uint64_t max, std::string_view input, const std::vector<std::size_t>& cuts) {
    DataReader reader(mode, max);
    Outcome out;
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : input.size();
        const std::string_view piece = input.substr(from, to - from);
        const std::size_t used = reader.feed(piece);
        out.consumed += used;
        if (used < piece.size()) {
            EXPECT_TRUE(reader.finished()) << "stopped early without the terminator";
            break;
        }
        from = to;
    }
    if (mode == Mode::chunked) {
        EXPECT_FALSE(reader.finished());
        reader.finish_chunks();
    }
    out.content = reader.content();
    out.error = reader.error();
    out.finished = reader.finished();
    out.size = reader.size();
    if (out.finished) {
        EXPECT_EQ(reader.feed("more"), 0u);
    }
    return out;
}

Outcome whole(Mode mode, std::uint64_t max, std::string_view input) { return drive(mode, max, input, {}); }

// The documented semantics, one octet at a time with the whole input in view: lines end
// only at CRLF; errors at the octet where they become certain, earliest first.
Outcome model(Mode mode, std::uint64_t max, std::string_view in) {
    Outcome out;
    bool line_start = mode == Mode::dot_stuffed;
    std::uint64_t line_len = 0;
    auto fail = [&](DataError e) {
        if (out.error == DataError::none) {
            out.error = e;
            out.content.clear();
        }
    };
    std::size_t i = 0;
    for (; i < in.size(); ++i) {
        const char c = in[i];
        if (line_start) {
            line_start = false;
            if (in.substr(i, 3) == ".\r\n") {
                out.finished = true;
                out.consumed = i + 3;
                return out;
            }
            if (c == '.') {  // stuffing: counted in the line, not in the content
                line_len = 1;
                continue;
            }
        }
        ++line_len;
        const bool after_cr = i > 0 && in[i - 1] == '\r';
        if ((c == '\n' && !after_cr) || (c != '\n' && after_cr)) fail(DataError::bare_cr_or_lf);
        if (line_len > 1000) fail(DataError::line_too_long);
        if (out.size + 1 > max) fail(DataError::too_big);
        ++out.size;
        if (out.error == DataError::none) out.content += c;
        if (c == '\n' && after_cr) {
            line_len = 0;
            line_start = mode == Mode::dot_stuffed;
        }
    }
    out.consumed = i;
    if (mode == Mode::chunked) {
        if (!in.empty() && in.back() == '\r') fail(DataError::bare_cr_or_lf);
        out.finished = true;
    }
    return out;
}

// Every way of cutting the input once, and one octet at a time, gives the same outcome.
void expect_split_invariant(Mode mode, std::uint64_t max, std::string_view input, const Outcome& expected) {
    SCOPED_TRACE(testing::PrintToString(std::string(input)));
    ASSERT_EQ(whole(mode, max, input), expected);
    std::vector<std::size_t> bytewise;
    for (std::size_t i = 1; i < input.size(); ++i) bytewise.push_back(i);
    EXPECT_EQ(drive(mode, max, input, bytewise), expected) << "one octet at a time";
    for (std::size_t cut = 0; cut <= input.size(); ++cut)
        ASSERT_EQ(drive(mode, max, input, {cut}), expected) << "cut at " << cut;
    if (input.size() <= 48) {
        for (std::size_t a = 0; a <= input.size(); ++a)
            for (std::size_t b = a; b <= input.size(); ++b)
                ASSERT_EQ(drive(mode, max, input, {a, b}), expected) << "cuts at " << a << ", " << b;
    }
}

Outcome done(std::string content, std::size_t consumed, DataError error = DataError::none) {
    Outcome o;
    o.size = content.size();
    o.content = error == DataError::none ? std::move(content) : std::string();
    o.error = error;
    o.finished = true;
    o.consumed = consumed;
    return o;
}

void expect_dot(std::string_view input, const Outcome& expected, std::uint64_t max = kNoLimit) {
    EXPECT_EQ(model(Mode::dot_stuffed, max, input), expected) << "model disagrees with the test";
    expect_split_invariant(Mode::dot_stuffed, max, input, expected);
}

}  // namespace

TEST(DataReaderDot, EmptyMessage) {
    expect_dot(".\r\n", done("", 3));
    expect_dot(".\r\nQUIT\r\n", done("", 3));
}

TEST(DataReaderDot, OneEmptyLine) { expect_dot("\r\n.\r\n", done("\r\n", 5)); }

TEST(DataReaderDot, PlainMessage) {
    const std::string msg = "From: a@b.example\r\nSubject: hi\r\n\r\nbody line\r\n\r\nlast\r\n";
    expect_dot(msg + ".\r\n", done(msg, msg.size() + 3));
}

TEST(DataReaderDot, StopsRightAfterTheTerminator) {
    const std::string input = "a\r\n.\r\nMAIL FROM:<x@y.example>\r\n";
    expect_dot(input, done("a\r\n", 6));
    DataReader r(Mode::dot_stuffed, kNoLimit);
    EXPECT_EQ(r.feed(input), 6u);
    EXPECT_TRUE(r.finished());
    EXPECT_EQ(r.feed(input.substr(6)), 0u);
    EXPECT_EQ(r.content(), "a\r\n");
}

TEST(DataReaderDot, Unstuffing) {
    expect_dot("..\r\n.\r\n", done(".\r\n", 7));
    expect_dot("...\r\n.\r\n", done("..\r\n", 8));
    expect_dot("a\r\n..b\r\n.\r\n", done("a\r\n.b\r\n", 11));
    expect_dot(".b\r\n.\r\n", done("b\r\n", 7));  // a lone leading dot is removed too
    expect_dot(". \r\n.\r\n", done(" \r\n", 7));
    expect_dot("a.\r\nb\r\n.\r\n", done("a.\r\nb\r\n", 10));  // only at line starts
    expect_dot("a\r\n.\r\n.\r\n", done("a\r\n", 6));
    expect_dot("\r\n\r\n.\r\n", done("\r\n\r\n", 7));
}

TEST(DataReaderDot, NothingEndsDataButStrictCrlfDotCrlf) {
    // SMTP smuggling: each of these is message text an upstream may pass on; none may
    // end our DATA, so the "MAIL FROM" after it is never run as a command.
    for (const char* fake : {"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r\n.\r", "\r.\r\n", "\n.\r", "\r.\n"}) {
        const std::string input = std::string("x") + fake + "MAIL FROM:<evil@x.example>\r\n.\r\n";
        SCOPED_TRACE(testing::PrintToString(input));
        expect_dot(input, model(Mode::dot_stuffed, kNoLimit, input));
        const Outcome o = whole(Mode::dot_stuffed, kNoLimit, input);
        EXPECT_EQ(o.error, DataError::bare_cr_or_lf);
        EXPECT_TRUE(o.finished);
        EXPECT_EQ(o.consumed, input.size());
        EXPECT_TRUE(o.content.empty());
    }
}

TEST(DataReaderDot, BareLineEnds) {
    for (const char* bad : {"a\nb\r\n", "a\rb\r\n", "a\r\r\n", "\n", "\r\n\n", "a\n\r\n", ".\n", ".\r.\r\n",
                            "a\r\n.\rb\r\n"}) {
        const std::string input = std::string(bad) + "\r\n.\r\n";
        SCOPED_TRACE(testing::PrintToString(input));
        const Outcome expected = model(Mode::dot_stuffed, kNoLimit, input);
        EXPECT_EQ(expected.error, DataError::bare_cr_or_lf);
        EXPECT_TRUE(expected.finished);
        expect_split_invariant(Mode::dot_stuffed, kNoLimit, input, expected);
    }
}

TEST(DataReaderDot, LineLength) {
    // 998 octets + CRLF = 1000: the longest line allowed.
    const std::string ok(998, 'a');
    expect_dot(ok + "\r\n.\r\n", done(ok + "\r\n", 1003));
    const std::string long_line(999, 'a');
    expect_dot(long_line + "\r\n.\r\n", done(long_line + "\r\n", 1004, DataError::line_too_long));
    // A stuffed dot counts as received: "." + 997 fits, "." + 998 does not.
    expect_dot("." + std::string(997, 'a') + "\r\n.\r\n", done(std::string(997, 'a') + "\r\n", 1003));
    expect_dot("." + std::string(998, 'a') + "\r\n.\r\n",
               done(std::string(998, 'a') + "\r\n", 1004, DataError::line_too_long));
    // Many full-length lines are fine: the count restarts at each CRLF.
    std::string many;
    for (int i = 0; i < 5; ++i) many += ok + "\r\n";
    EXPECT_EQ(whole(Mode::dot_stuffed, kNoLimit, many + ".\r\n"), done(many, many.size() + 3));
    // A line that never ends is cut off at its 1001st octet, whatever follows.
    const std::string endless = std::string(5000, 'z') + "\r\n.\r\n";
    EXPECT_EQ(whole(Mode::dot_stuffed, kNoLimit, endless).error, DataError::line_too_long);
}

TEST(DataReaderDot, Size) {
    const std::string msg = "abc\r\n";
    expect_dot(msg + ".\r\n", done(msg, 8), 5);
    expect_dot(msg + ".\r\n", done(msg, 8, DataError::too_big), 4);
    expect_dot(".\r\n", done("", 3), 0);
    expect_dot("\r\n.\r\n", done("\r\n", 5, DataError::too_big), 1);
    // Stuffing dots are not content.
    expect_dot("..\r\n.\r\n", done(".\r\n", 7), 3);
    expect_dot("..\r\n.\r\n", done(".\r\n", 7, DataError::too_big), 2);
}

TEST(DataReaderDot, FirstErrorWins) {
    const std::string long_line(1200, 'a');
    Outcome o = whole(Mode::dot_stuffed, kNoLimit, "a\nb\r\n" + long_line + "\r\n.\r\n");
    EXPECT_EQ(o.error, DataError::bare_cr_or_lf);
    o = whole(Mode::dot_stuffed, kNoLimit, long_line + "\nb\r\n.\r\n");
    EXPECT_EQ(o.error, DataError::line_too_long);
    o = whole(Mode::dot_stuffed, 10, "0123456789abc\nb\r\n.\r\n");
    EXPECT_EQ(o.error, DataError::too_big);
    o = whole(Mode::dot_stuffed, 10, "0123\n456789abc\r\n.\r\n");
    EXPECT_EQ(o.error, DataError::bare_cr_or_lf);
    // Decided by octet position, not by how the data arrived.
    for (const std::string& input : {std::string(1005, 'a') + "\n\r\n.\r\n", "abc\n" + std::string(1005, 'a') + "\r\n.\r\n",
                                     std::string(999, 'a') + "\r\r\n.\r\n", std::string(1000, 'a') + "\r\n.\r\n"}) {
        expect_split_invariant(Mode::dot_stuffed, kNoLimit, input, model(Mode::dot_stuffed, kNoLimit, input));
        expect_split_invariant(Mode::dot_stuffed, 1000, input, model(Mode::dot_stuffed, 1000, input));
    }
}

TEST(DataReaderDot, AfterAnErrorKeepsInStepButStoresNothing) {
    DataReader r(Mode::dot_stuffed, kNoLimit);
    EXPECT_EQ(r.feed("bad\nline\r\n"), 10u);
    EXPECT_EQ(r.error(), DataError::bare_cr_or_lf);
    EXPECT_TRUE(r.content().empty());
    EXPECT_FALSE(r.finished());
    EXPECT_EQ(r.feed(std::string(3000, 'x') + "\r\n"), 3002u);
    EXPECT_EQ(r.error(), DataError::bare_cr_or_lf);  // not line_too_long: the first error wins
    EXPECT_EQ(r.feed("more\r\n.\r\nRSET\r\n"), 9u);
    EXPECT_TRUE(r.finished());
    EXPECT_TRUE(r.content().empty());
    EXPECT_EQ(r.size(), 10u + 3002u + 6u);
}

TEST(DataReaderDot, EmptyFeeds) {
    DataReader r(Mode::dot_stuffed, kNoLimit);
    EXPECT_EQ(r.feed(""), 0u);
    EXPECT_EQ(r.feed("a\r"), 2u);
    EXPECT_EQ(r.feed(""), 0u);
    EXPECT_EQ(r.feed("\n."), 2u);
    EXPECT_EQ(r.feed(""), 0u);
    EXPECT_EQ(r.feed("\r"), 1u);
    EXPECT_FALSE(r.finished());
    EXPECT_EQ(r.feed("\nX"), 1u);
    EXPECT_TRUE(r.finished());
    EXPECT_EQ(r.error(), DataError::none);
    EXPECT_EQ(r.content(), "a\r\n");
}

TEST(DataReaderDot, StuffingRoundTrip) {
    // A message of awkward lines, dot-stuffed as a client would, comes back unchanged.
    std::mt19937 rng(5321);
    const std::vector<std::string> lines = {"", ".", "..", ". ", ".x", "x.", "...\t", std::string(998, 'l'),
                                            "." + std::string(996, 'd'), "From: a", "\xc3\xa9t\xc3\xa9", "\t."};
    std::string content, wire;
    for (int i = 0; i < 400; ++i) {
        const std::string& line = lines[rng() % lines.size()];
        content += line + "\r\n";
        wire += (!line.empty() && line[0] == '.' ? "." : "") + line + "\r\n";
    }
    wire += ".\r\nQUIT\r\n";
    for (std::size_t chunk : {1u, 2u, 3u, 7u, 512u, 4096u, 65536u}) {
        DataReader r(Mode::dot_stuffed, kNoLimit);
        std::size_t pos = 0;
        while (!r.finished() && pos < wire.size()) pos += r.feed(std::string_view(wire).substr(pos, chunk));
        ASSERT_TRUE(r.finished()) << chunk;
        EXPECT_EQ(r.error(), DataError::none);
        EXPECT_TRUE(r.content() == content) << chunk;
        EXPECT_EQ(r.size(), content.size());
        EXPECT_EQ(wire.substr(pos), "QUIT\r\n");
    }
}

TEST(DataReaderChunked, Basic) {
    const std::string msg = "Subject: x\r\n\r\nbody\r\n";
    Outcome expected{msg, DataError::none, true, msg.size(), msg.size()};
    EXPECT_EQ(model(Mode::chunked, kNoLimit, msg), expected);
    expect_split_invariant(Mode::chunked, kNoLimit, msg, expected);
}

TEST(DataReaderChunked, NoDotHandling) {
    const std::string msg = ".\r\n..\r\nx\r\n.\r\n";
    DataReader r(Mode::chunked, kNoLimit);
    EXPECT_EQ(r.feed(msg), msg.size());
    EXPECT_FALSE(r.finished());
    r.finish_chunks();
    EXPECT_TRUE(r.finished());
    EXPECT_EQ(r.content(), msg);
    expect_split_invariant(Mode::chunked, kNoLimit, msg, model(Mode::chunked, kNoLimit, msg));
}

TEST(DataReaderChunked, TrailingLoneCr) {
    DataReader r(Mode::chunked, kNoLimit);
    r.feed("abc\r\n");
    r.feed("def\r");
    EXPECT_EQ(r.error(), DataError::none);  // the LF may still come in the next chunk
    r.finish_chunks();
    EXPECT_EQ(r.error(), DataError::bare_cr_or_lf);
    EXPECT_TRUE(r.content().empty());

    DataReader split(Mode::chunked, kNoLimit);
    split.feed("abc\r");
    split.feed("\ndef");
    split.finish_chunks();
    EXPECT_EQ(split.error(), DataError::none);
    EXPECT_EQ(split.content(), "abc\r\ndef");  // no final CRLF needed in BDAT
}

TEST(DataReaderChunked, Errors) {
    for (const std::string& input : {std::string("a\nb"), std::string("a\rb"), std::string("\r"), std::string("\n"),
                                     std::string("a\r\r\n"), std::string(999, 'x') + "\r\n",
                                     std::string(998, 'x') + "\r\n" + std::string(1001, 'y'),
                                     std::string("ok\r\n") + std::string(2000, 'x') + "\n"}) {
        const Outcome expected = model(Mode::chunked, kNoLimit, input);
        EXPECT_NE(expected.error, DataError::none);
        expect_split_invariant(Mode::chunked, kNoLimit, input, expected);
    }
    const std::string msg = "0123456789\r\n";
    expect_split_invariant(Mode::chunked, 12, msg, model(Mode::chunked, 12, msg));
    const Outcome big = whole(Mode::chunked, 11, msg);
    EXPECT_EQ(big.error, DataError::too_big);
    EXPECT_EQ(big.size, 12u);
    expect_split_invariant(Mode::chunked, 11, msg, big);
}

TEST(DataReaderChunked, ConsumesEverythingAfterAnError) {
    DataReader r(Mode::chunked, 4);
    EXPECT_EQ(r.feed("0123456789"), 10u);
    EXPECT_EQ(r.error(), DataError::too_big);
    EXPECT_EQ(r.feed("a\nb"), 3u);
    EXPECT_EQ(r.error(), DataError::too_big);
    EXPECT_EQ(r.size(), 13u);
    r.finish_chunks();
    EXPECT_EQ(r.error(), DataError::too_big);
    EXPECT_TRUE(r.content().empty());
}

TEST(DataReaderModel, RandomStreamsMatchTheModelAtEverySplit) {
    // Streams built from the pieces that matter, checked against the octet model, whole,
    // octet by octet, and at random cut points.
    std::mt19937 rng(1870);
    const std::vector<std::string> pieces = {"a", ".", "\r", "\n", "\r\n", "\r\n.", "..", std::string(330, 'x'),
                                             "\r\n.\r\n"};
    for (int round = 0; round < 3000; ++round) {
        std::string input;
        const int n = static_cast<int>(rng() % 12);
        for (int i = 0; i < n; ++i) input += pieces[rng() % pieces.size()];
        const Mode mode = rng() % 2 ? Mode::dot_stuffed : Mode::chunked;
        if (mode == Mode::dot_stuffed) input += "\r\n.\r\n";
        const std::uint64_t max = rng() % 3 ? kNoLimit : rng() % 1500;
        SCOPED_TRACE(testing::PrintToString(input));
        const Outcome expected = model(mode, max, input);
        ASSERT_EQ(whole(mode, max, input), expected);
        std::vector<std::size_t> bytewise;
        for (std::size_t i = 1; i < input.size(); ++i) bytewise.push_back(i);
        ASSERT_EQ(drive(mode, max, input, bytewise), expected);
        for (int k = 0; k < 8; ++k) {
            std::vector<std::size_t> cuts;
            for (std::size_t i = 1; i < input.size(); ++i)
                if (rng() % 4 == 0) cuts.push_back(i);
            ASSERT_EQ(drive(mode, max, input, cuts), expected);
        }
    }
}
