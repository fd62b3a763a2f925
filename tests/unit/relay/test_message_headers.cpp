// scan_headers: where the header section ends, Received: count, Message-ID.
#include <gtest/gtest.h>

#include <string>

#include "relay/message_headers.h"

using edgerelay::relay::scan_headers;

TEST(ScanHeaders, BlankLineEndsTheSection) {
    const std::string head = "From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\n";
    const auto s = scan_headers(head + "body\r\nReceived: not a header\r\n");
    EXPECT_TRUE(s.has_blank_line);
    EXPECT_EQ(s.header_end, head.size());
    EXPECT_EQ(s.received_count, 0u);
    EXPECT_FALSE(s.has_message_id);
}

TEST(ScanHeaders, NoBody) {
    const std::string head = "From: a@b.example\r\nSubject: hi\r\n";
    auto s = scan_headers(head);
    EXPECT_FALSE(s.has_blank_line);
    EXPECT_EQ(s.header_end, head.size());
    s = scan_headers("Subject: no line end");
    EXPECT_FALSE(s.has_blank_line);
    EXPECT_EQ(s.header_end, 20u);
}

TEST(ScanHeaders, EmptyAndHeaderless) {
    auto s = scan_headers("");
    EXPECT_EQ(s.header_end, 0u);
    EXPECT_FALSE(s.has_blank_line);
    s = scan_headers("\r\nbody\r\n");
    EXPECT_TRUE(s.has_blank_line);
    EXPECT_EQ(s.header_end, 2u);
    s = scan_headers("just text, no header\r\nMessage-ID: <x@y>\r\n\r\n");
    EXPECT_FALSE(s.has_blank_line);
    EXPECT_EQ(s.header_end, 0u);
    EXPECT_FALSE(s.has_message_id);
    s = scan_headers(" leading continuation\r\n\r\n");
    EXPECT_EQ(s.header_end, 0u);
    EXPECT_FALSE(s.has_blank_line);
}

TEST(ScanHeaders, NonHeaderLineEndsTheSection) {
    const std::string head = "From: a@b.example\r\nReceived: x\r\n";
    for (const char* body : {"This is the body\r\n", ": no name\r\n", "Bad Name: x\r\n", "NoColon\r\n",
                             "\xc3\xa9t\xc3\xa9: x\r\n", "Na\x01me: x\r\n"}) {
        SCOPED_TRACE(body);
        const auto s = scan_headers(head + body + "Received: later\r\n\r\nbody");
        EXPECT_FALSE(s.has_blank_line);
        EXPECT_EQ(s.header_end, head.size());
        EXPECT_EQ(s.received_count, 1u);
    }
}

TEST(ScanHeaders, FoldedLinesBelongToTheirField) {
    const std::string head =
        "Subject: a long\r\n subject\r\n\tfolded twice\r\nReceived: from a\r\n by b\r\n\twith ESMTP\r\n\r\n";
    const auto s = scan_headers(head + " body starting with a space\r\n");
    EXPECT_TRUE(s.has_blank_line);
    EXPECT_EQ(s.header_end, head.size());
    EXPECT_EQ(s.received_count, 1u);
}

TEST(ScanHeaders, CountsReceived) {
    const std::string head =
        "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        "received: from c\r\n by d\r\n"
        "RECEIVED : obsolete space before the colon\r\n"
        "ReCeIvEd:no space\r\n"
        "X-Received: not counted\r\n"
        "Received-SPF: pass\r\n"
        "Resent-Received: no\r\n"
        "Subject: Received: no\r\n"
        " Received: a continuation, not a field\r\n"
        "\r\n"
        "Received: in the body\r\n";
    const auto s = scan_headers(head);
    EXPECT_EQ(s.received_count, 4u);
}

TEST(ScanHeaders, ManyReceived) {
    std::string head;
    for (int i = 0; i < 200; ++i) head += "Received: from hop" + std::to_string(i) + "\r\n";
    const auto s = scan_headers(head + "\r\nbody");
    EXPECT_EQ(s.received_count, 200u);
    EXPECT_EQ(s.header_end, head.size() + 2);
}

TEST(ScanHeaders, MessageId) {
    auto s = scan_headers("Message-ID: <abc@x>\r\n\r\n");
    EXPECT_TRUE(s.has_message_id);
    EXPECT_EQ(s.message_id, "abc@x");
    s = scan_headers("message-id:<abc@x>\r\n");
    EXPECT_EQ(s.message_id, "abc@x");
    s = scan_headers("Message-Id:    <abc@x>  \t \r\n\r\n");
    EXPECT_EQ(s.message_id, "abc@x");
    s = scan_headers("Message-ID : <abc@x>\r\n\r\n");
    EXPECT_EQ(s.message_id, "abc@x");
    s = scan_headers("MESSAGE-ID: abc@x\r\n\r\n");  // no brackets: taken as it stands
    EXPECT_EQ(s.message_id, "abc@x");
    s = scan_headers("Message-ID: <abc@x> (a comment)\r\n\r\n");
    EXPECT_EQ(s.message_id, "abc@x");
}

TEST(ScanHeaders, FoldedMessageId) {
    auto s = scan_headers("Message-ID:\r\n <20240101.abc@mail.example>\r\nSubject: x\r\n\r\n");
    EXPECT_TRUE(s.has_message_id);
    EXPECT_EQ(s.message_id, "20240101.abc@mail.example");
    s = scan_headers("Subject: x\r\nMessage-ID:\r\n\t<last@field>\r\n");  // folded, last field, no body
    EXPECT_EQ(s.message_id, "last@field");
}

TEST(ScanHeaders, MessageIdLookAlikes) {
    for (const char* head : {"Resent-Message-ID: <a@b>\r\n\r\n", "X-Message-ID: <a@b>\r\n\r\n",
                             "Message-IDs: <a@b>\r\n\r\n", "In-Reply-To: <a@b>\r\n\r\n",
                             "Subject: x\r\n\r\nMessage-ID: <in@body>\r\n",
                             "Subject: x\r\n Message-ID: <folded@in>\r\n\r\n"}) {
        SCOPED_TRACE(head);
        const auto s = scan_headers(head);
        EXPECT_FALSE(s.has_message_id);
        EXPECT_TRUE(s.message_id.empty());
    }
}

TEST(ScanHeaders, FirstMessageIdWins) {
    const auto s = scan_headers("Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n");
    EXPECT_EQ(s.message_id, "first@x");
}

TEST(ScanHeaders, EmptyMessageIdStillCounts) {
    // A field is there, even if broken: adding a second would make two.
    const auto s = scan_headers("Message-ID:\r\n\r\n");
    EXPECT_TRUE(s.has_message_id);
    EXPECT_TRUE(s.message_id.empty());
}

TEST(ScanHeaders, BareLfLines) {
    // Content that did not come through DataReader: LF alone still ends a line.
    const auto s = scan_headers("A: b\nReceived: c\n\nbody");
    EXPECT_TRUE(s.has_blank_line);
    EXPECT_EQ(s.header_end, 18u);
    EXPECT_EQ(s.received_count, 1u);
}
