// parse_remote_reply and RemoteReply::line(): what the delivery client makes of the
// replies it reads (RFC 5321 4.2, RFC 3463 enhanced status codes).
#include <gtest/gtest.h>

#include "relay/smtp_client.h"

namespace edgerelay::relay {
namespace {

RemoteReply parsed(std::string_view text) {
    auto reply = parse_remote_reply(text);
    EXPECT_TRUE(reply.has_value()) << text;
    return reply.value_or(RemoteReply{});
}

TEST(ParseRemoteReply, SingleLine) {
    const auto r = parsed("250 ok\r\n");
    EXPECT_EQ(r.code, 250);
    EXPECT_EQ(r.enhanced, "");
    EXPECT_EQ(r.text, "ok");
    EXPECT_TRUE(r.positive());
    EXPECT_FALSE(r.permanent());
}

TEST(ParseRemoteReply, EnhancedCode) {
    const auto r = parsed("550 5.1.1 <bob@example.org>: user unknown\r\n");
    EXPECT_EQ(r.code, 550);
    EXPECT_EQ(r.enhanced, "5.1.1");
    EXPECT_EQ(r.text, "<bob@example.org>: user unknown");
    EXPECT_TRUE(r.permanent());
    EXPECT_FALSE(r.positive());
}

TEST(ParseRemoteReply, EnhancedCodeWithMultiDigitParts) {
    const auto r = parsed("452 4.5.3 too many recipients\r\n");
    EXPECT_EQ(r.enhanced, "4.5.3");
    EXPECT_EQ(parsed("250 2.123.456 ok").enhanced, "2.123.456");
    EXPECT_EQ(parsed("250 2.0.0").enhanced, "2.0.0");
    EXPECT_EQ(parsed("250 2.0.0").text, "");
}

TEST(ParseRemoteReply, NotAnEnhancedCode) {
    // Class 3 does not exist, parts have at most three digits, and a space must follow.
    for (std::string_view text : {"250 3.0.0 x", "250 2.0.1234 x", "250 2.0.0x", "250 2.0 x", "250 v2.0.0 x",
                                  "250 2..0 x", "250 1.2.3 x"}) {
        const auto r = parsed(text);
        EXPECT_EQ(r.enhanced, "") << text;
        EXPECT_EQ(r.text, std::string(text.substr(4))) << text;
    }
}

TEST(ParseRemoteReply, WithoutCrlfOrText) {
    const auto r = parsed("354");
    EXPECT_EQ(r.code, 354);
    EXPECT_EQ(r.text, "");
    EXPECT_EQ(parsed("221 bye").text, "bye");
    EXPECT_EQ(parsed("250 ok\n").text, "ok");  // a bare LF is tolerated
}

TEST(ParseRemoteReply, MultiLineJoinsEveryLinesText) {
    const auto r = parsed(
        "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
        "550-5.1.1 Please try double-checking the recipient's email address.\r\n"
        "550 5.1.1 https://support.example/answer\r\n");
    EXPECT_EQ(r.code, 550);
    EXPECT_EQ(r.enhanced, "5.1.1");
    EXPECT_EQ(r.text,
              "The email account that you tried to reach does not exist. "
              "Please try double-checking the recipient's email address. https://support.example/answer");
}

TEST(ParseRemoteReply, MultiLineEhlo) {
    const auto r = parsed("250-mx.example.org hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n");
    EXPECT_EQ(r.code, 250);
    EXPECT_EQ(r.enhanced, "");
    EXPECT_EQ(r.text, "mx.example.org hello PIPELINING SIZE 1000 CHUNKING");
}

TEST(ParseRemoteReply, EmptyContinuationLines) {
    const auto r = parsed("220-\r\n220-mx.example.org\r\n220 \r\n");
    EXPECT_EQ(r.code, 220);
    EXPECT_EQ(r.text, "mx.example.org");
}

TEST(ParseRemoteReply, Malformed) {
    for (std::string_view text : {
             "",                         // nothing
             "25 ok\r\n",                // two digits
             "abc ok\r\n",               // no code
             "150 ok\r\n",               // no such class in SMTP
             "650 ok\r\n",               // nor this one
             "250ok\r\n",                // no separator
             "250-first\r\n",            // continuation never ends
             "250-first\r\n251 last\r\n",  // codes differ
             "250 ok\r\n250 again\r\n",  // something after the last line
             "250 ok\r\n\r\n",           // an empty line after the last
             "2x0 ok\r\n",
         }) {
        EXPECT_FALSE(parse_remote_reply(text).has_value()) << "'" << text << "'";
    }
}

TEST(RemoteReplyLine, CodeEnhancedText) {
    RemoteReply r;
    r.code = 550;
    r.enhanced = "5.1.1";
    r.text = "user unknown";
    EXPECT_EQ(r.line(), "550 5.1.1 user unknown");
    r.enhanced.clear();
    EXPECT_EQ(r.line(), "550 user unknown");
    r.text.clear();
    EXPECT_EQ(r.line(), "550");
    r.enhanced = "5.0.0";
    EXPECT_EQ(r.line(), "550 5.0.0");
}

TEST(RemoteReplyLine, LocalFailureIsTextAlone) {
    RemoteReply r;
    r.text = "timeout after MAIL FROM";
    EXPECT_EQ(r.line(), "timeout after MAIL FROM");
    EXPECT_FALSE(r.permanent());
    EXPECT_FALSE(r.positive());
}

TEST(RemoteReplyLine, RoundTrip) {
    for (std::string_view text : {"250 2.0.0 Ok: queued as 0123", "421 4.4.2 timeout", "354 go ahead", "221 bye"}) {
        EXPECT_EQ(parsed(text).line(), text);
    }
}

}  // namespace
}  // namespace edgerelay::relay
