// The reply table: codes and enhanced codes of SPEC §4, and the wire shape of a reply.
#include <gtest/gtest.h>

#include <string>

#include "relay/smtp_reply.h"

using edgerelay::relay::format_reply;
using edgerelay::relay::is_error;
using edgerelay::relay::Reply;
using edgerelay::relay::reply_info;

namespace {

// "CODE ENHANCED" of a reply, as the table gives it.
std::string codes(Reply r) {
    const auto& info = reply_info(r);
    std::string out = std::to_string(info.code);
    if (!info.enhanced.empty()) out += " " + std::string(info.enhanced);
    return out;
}

}  // namespace

TEST(SmtpReply, SpecTableCodes) {
    EXPECT_EQ(codes(Reply::relay_denied), "554 5.7.1");
    EXPECT_EQ(codes(Reply::bad_sequence), "503 5.5.1");
    EXPECT_EQ(codes(Reply::need_helo), "503 5.5.1");
    EXPECT_EQ(codes(Reply::need_mail), "503 5.5.1");
    EXPECT_EQ(codes(Reply::need_rcpt), "503 5.5.1");
    EXPECT_EQ(codes(Reply::unknown_command), "500 5.5.2");
    EXPECT_EQ(codes(Reply::not_implemented), "502 5.5.1");
    EXPECT_EQ(codes(Reply::syntax), "501 5.5.4");
    EXPECT_EQ(codes(Reply::unknown_parameter), "555 5.5.4");
    EXPECT_EQ(codes(Reply::bad_recipient), "501 5.1.3");
    EXPECT_EQ(codes(Reply::bad_sender), "501 5.1.7");
    EXPECT_EQ(codes(Reply::needs_smtputf8), "553 5.6.7");
    EXPECT_EQ(codes(Reply::line_too_long), "500 5.5.2");
    EXPECT_EQ(codes(Reply::bad_data), "550 5.5.2");
    EXPECT_EQ(codes(Reply::data_line_too_long), "550 5.5.2");
    EXPECT_EQ(codes(Reply::too_big), "552 5.3.4");
    EXPECT_EQ(codes(Reply::too_many_recipients), "452 4.5.3");
    EXPECT_EQ(codes(Reply::too_many_hops), "554 5.4.6");
    EXPECT_EQ(codes(Reply::too_many_errors), "421 4.7.0");
    EXPECT_EQ(codes(Reply::too_many_connections), "421 4.7.0");
    EXPECT_EQ(codes(Reply::too_many_from_ip), "421 4.7.0");
    EXPECT_EQ(codes(Reply::timeout), "421 4.4.2");
    EXPECT_EQ(codes(Reply::spool_full), "452 4.3.1");
    EXPECT_EQ(codes(Reply::tls_unavailable), "503 5.5.1");
    EXPECT_EQ(codes(Reply::tls_active), "503 5.5.1");
}

TEST(SmtpReply, SuccessCodes) {
    EXPECT_EQ(codes(Reply::service_ready), "220");
    EXPECT_EQ(codes(Reply::closing), "221 2.0.0");
    EXPECT_EQ(codes(Reply::ok), "250 2.0.0");
    EXPECT_EQ(codes(Reply::sender_ok), "250 2.1.0");
    EXPECT_EQ(codes(Reply::recipient_ok), "250 2.1.5");
    EXPECT_EQ(codes(Reply::queued), "250 2.0.0");
    EXPECT_EQ(codes(Reply::start_data), "354");
    EXPECT_EQ(codes(Reply::start_tls), "220 2.0.0");
    EXPECT_EQ(codes(Reply::vrfy_cannot), "252 2.5.0");
}

TEST(SmtpReply, FormatShape) {
    EXPECT_EQ(format_reply(Reply::ok), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(format_reply(Reply::relay_denied), "554 5.7.1 Error: relay access denied\r\n");
    EXPECT_EQ(format_reply(Reply::queued, "4Xk9QZ"), "250 2.0.0 Ok: queued as 4Xk9QZ\r\n");
    EXPECT_EQ(format_reply(Reply::service_ready, "mx.example.org"), "220 ESMTP edgerelay mx.example.org\r\n");
    EXPECT_EQ(format_reply(Reply::start_data), "354 End data with <CR><LF>.<CR><LF>\r\n");
    EXPECT_EQ(format_reply(Reply::needs_smtputf8), "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n");
}

TEST(SmtpReply, EveryReplyIsOneWellFormedLine) {
    for (int i = 0; i <= static_cast<int>(Reply::relay_denied); ++i) {
        const auto r = static_cast<Reply>(i);
        const std::string line = format_reply(r, "detail");
        SCOPED_TRACE(line);
        ASSERT_GE(line.size(), 6u);
        EXPECT_EQ(line.substr(0, 3), std::to_string(reply_info(r).code));
        EXPECT_EQ(line[3], ' ');
        EXPECT_EQ(line.substr(line.size() - 2), "\r\n");
        EXPECT_EQ(line.find_first_of("\r\n"), line.size() - 2) << "exactly one line";
        EXPECT_LE(line.size(), 512u);  // RFC 5321 4.5.3.1.5
        const auto& info = reply_info(r);
        if (!info.enhanced.empty()) {
            // RFC 3463: the enhanced class matches the reply class.
            EXPECT_EQ(info.enhanced[0], line[0]);
            EXPECT_EQ(line.substr(4, info.enhanced.size() + 1), std::string(info.enhanced) + " ");
        }
        EXPECT_EQ(is_error(r), info.code >= 400);
    }
}

TEST(SmtpReply, IsError) {
    EXPECT_FALSE(is_error(Reply::ok));
    EXPECT_FALSE(is_error(Reply::start_data));
    EXPECT_TRUE(is_error(Reply::spool_full));
    EXPECT_TRUE(is_error(Reply::syntax));
    EXPECT_TRUE(is_error(Reply::timeout));
}
