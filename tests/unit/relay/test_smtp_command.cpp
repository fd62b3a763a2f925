// Command lines, MAIL/RCPT arguments and their ESMTP parameters, BDAT sizes.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "relay/smtp_command.h"

using namespace edgerelay::relay;

namespace {

void expect_mail_from_refused(std::initializer_list<const char*> args, Reply expected) {
    for (const char* arg : args) {
        SCOPED_TRACE(arg);
        const auto m = parse_mail_from(arg);
        EXPECT_FALSE(m.value);
        EXPECT_EQ(m.error, expected);
    }
}

void expect_rcpt_to_refused(std::initializer_list<const char*> args, Reply expected) {
    for (const char* arg : args) {
        SCOPED_TRACE(arg);
        const auto r = parse_rcpt_to(arg, false);
        EXPECT_FALSE(r.value);
        EXPECT_EQ(r.error, expected);
    }
}

}  // namespace

TEST(ParseCommand, Verbs) {
    const std::pair<const char*, Verb> cases[] = {
        {"EHLO", Verb::ehlo}, {"HELO", Verb::helo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
        {"DATA", Verb::data}, {"BDAT", Verb::bdat}, {"RSET", Verb::rset}, {"NOOP", Verb::noop},
        {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help},
        {"STARTTLS", Verb::starttls},
        {"TURN", Verb::not_implemented}, {"ETRN", Verb::not_implemented}, {"ATRN", Verb::not_implemented},
        {"AUTH", Verb::not_implemented}, {"SEND", Verb::not_implemented}, {"SOML", Verb::not_implemented},
        {"SAML", Verb::not_implemented},
    };
    for (const auto& [name, verb] : cases) {
        SCOPED_TRACE(name);
        EXPECT_EQ(parse_command(name).verb, verb);
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(c - 'A' + 'a');
        EXPECT_EQ(parse_command(lower).verb, verb);
        EXPECT_EQ(parse_command(std::string(name) + " x").verb, verb);
        EXPECT_EQ(parse_command(std::string(name) + "X").verb, Verb::unknown);
        EXPECT_EQ(parse_command(std::string(name).substr(1)).verb, Verb::unknown);
    }
    EXPECT_EQ(parse_command("eHlO mx.example").verb, Verb::ehlo);
    EXPECT_EQ(parse_command("StartTls").verb, Verb::starttls);
}

TEST(ParseCommand, UnknownVerbs) {
    for (const char* line : {"", " ", " MAIL FROM:<a@b>", "MAILX FROM:<a@b>", "MAIL\tFROM:<a@b>", "MAIL:", "X",
                             "GET / HTTP/1.1", "POST /", "\xc3\x89HLO x", "MAI", "DATA.", "QUIT\r",
                             "ËHLO"}) {
        SCOPED_TRACE(line);
        EXPECT_EQ(parse_command(line).verb, Verb::unknown);
    }
}

TEST(ParseCommand, Args) {
    Command c = parse_command("MAIL FROM:<a@b>");
    EXPECT_EQ(c.verb, Verb::mail);
    EXPECT_EQ(c.args, "FROM:<a@b>");

    c = parse_command("RCPT TO:<a@b>   \t ");
    EXPECT_EQ(c.args, "TO:<a@b>");

    c = parse_command("EHLO  mx.example");  // only one space is the separator
    EXPECT_EQ(c.args, " mx.example");

    c = parse_command("DATA");
    EXPECT_EQ(c.verb, Verb::data);
    EXPECT_TRUE(c.args.empty());

    c = parse_command("NOOP ");
    EXPECT_EQ(c.verb, Verb::noop);
    EXPECT_TRUE(c.args.empty());

    c = parse_command("HELO a b  c");
    EXPECT_EQ(c.args, "a b  c");
}

TEST(ParseMailFrom, Basic) {
    const auto m = parse_mail_from("FROM:<sender@example.org>");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->sender.address(), "sender@example.org");
    EXPECT_EQ(m.value->sender.domain, "example.org");
    EXPECT_FALSE(m.value->size);
    EXPECT_EQ(m.value->body, BodyType::seven_bit);
    EXPECT_FALSE(m.value->smtputf8);

    for (const char* ok : {"from:<a@b.example>", "From:<a@b.example>", "FROM: <a@b.example>",
                           "FROM:   <a@b.example>", " FROM:<a@b.example>", "FROM:<a@b.example>  "}) {
        SCOPED_TRACE(ok);
        const auto p = parse_mail_from(ok);
        ASSERT_TRUE(p.value);
        EXPECT_EQ(p.value->sender.address(), "a@b.example");
    }
}

TEST(ParseMailFrom, NullSender) {
    const auto m = parse_mail_from("FROM:<>");
    ASSERT_TRUE(m.value);
    EXPECT_TRUE(m.value->sender.null());
    const auto s = parse_mail_from("FROM:<> SIZE=10");
    ASSERT_TRUE(s.value);
    EXPECT_EQ(s.value->size, 10u);
}

TEST(ParseMailFrom, MissingFrom) {
    expect_mail_from_refused({"", "<a@b.example>", "FROM <a@b.example>", "FROM<a@b.example>", "TO:<a@b.example>",
                            "FRO:<a@b.example>", "FROMM:<a@b.example>", "F"},
                             Reply::syntax);
}

TEST(ParseMailFrom, BadPath) {
    expect_mail_from_refused({"FROM:", "FROM:a@b.example", "FROM:<a@b.example", "FROM:<a@@b.example>",
                            "FROM:<a@b.example@c.example>", "FROM:<a b@c.example>", "FROM:<\"a@c.example>"},
                             Reply::bad_sender);
}

TEST(ParseMailFrom, Size) {
    auto m = parse_mail_from("FROM:<a@b.example> SIZE=12345");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->size, 12345u);
    m = parse_mail_from("FROM:<a@b.example> size=0");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->size, 0u);
    m = parse_mail_from("FROM:<a@b.example> SIZE=18446744073709551615");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->size, 18446744073709551615u);
    m = parse_mail_from("FROM:<a@b.example> SIZE=000042");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->size, 42u);

    expect_mail_from_refused({"FROM:<a@b.example> SIZE=18446744073709551616", "FROM:<a@b.example> SIZE=99999999999999999999999",
                            "FROM:<a@b.example> SIZE=", "FROM:<a@b.example> SIZE", "FROM:<a@b.example> SIZE=-1",
                            "FROM:<a@b.example> SIZE=+1", "FROM:<a@b.example> SIZE=1k", "FROM:<a@b.example> SIZE=0x10",
                            "FROM:<a@b.example> SIZE= 10", "FROM:<a@b.example> SIZE=1.5",
                            "FROM:<a@b.example> SIZE=1 SIZE=2"},
                             Reply::syntax);
}

TEST(ParseMailFrom, Body) {
    auto m = parse_mail_from("FROM:<a@b.example> BODY=8BITMIME");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->body, BodyType::eight_bit_mime);
    m = parse_mail_from("FROM:<a@b.example> body=8bitmime");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->body, BodyType::eight_bit_mime);
    m = parse_mail_from("FROM:<a@b.example> BODY=7BIT");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->body, BodyType::seven_bit);

    expect_mail_from_refused({"FROM:<a@b.example> BODY=BINARYMIME", "FROM:<a@b.example> BODY=", "FROM:<a@b.example> BODY",
                            "FROM:<a@b.example> BODY=8BIT", "FROM:<a@b.example> BODY=8BITMIMEX",
                            "FROM:<a@b.example> BODY=7BIT BODY=8BITMIME"},
                             Reply::syntax);
}

TEST(ParseMailFrom, Smtputf8) {
    auto m = parse_mail_from("FROM:<a@b.example> SMTPUTF8");
    ASSERT_TRUE(m.value);
    EXPECT_TRUE(m.value->smtputf8);
    EXPECT_FALSE(m.value->sender.non_ascii);
    m = parse_mail_from("FROM:<a@b.example> smtputf8");
    ASSERT_TRUE(m.value);
    EXPECT_TRUE(m.value->smtputf8);

    const auto v = parse_mail_from("FROM:<a@b.example> SMTPUTF8=yes");
    EXPECT_FALSE(v.value);
    EXPECT_EQ(v.error, Reply::syntax);
}

TEST(ParseMailFrom, Utf8SenderNeedsTheParameter) {
    // The parameter follows the path, yet decides whether the path is acceptable.
    const auto with = parse_mail_from("FROM:<j\xc3\xb6rg@b\xc3\xbc\x63her.example> SMTPUTF8");
    ASSERT_TRUE(with.value);
    EXPECT_TRUE(with.value->sender.non_ascii);
    EXPECT_EQ(with.value->sender.local, "j\xc3\xb6rg");
    EXPECT_EQ(with.value->sender.domain, "b\xc3\xbc\x63her.example");

    const auto with_more = parse_mail_from("FROM:<j\xc3\xb6rg@example.org> BODY=8BITMIME SMTPUTF8 SIZE=5");
    ASSERT_TRUE(with_more.value);
    EXPECT_EQ(with_more.value->size, 5u);

    const auto without = parse_mail_from("FROM:<j\xc3\xb6rg@example.org>");
    EXPECT_FALSE(without.value);
    EXPECT_EQ(without.error, Reply::needs_smtputf8);
    const auto other = parse_mail_from("FROM:<j\xc3\xb6rg@example.org> BODY=8BITMIME");
    EXPECT_EQ(other.error, Reply::needs_smtputf8);

    const auto invalid = parse_mail_from("FROM:<j\xc3(rg@example.org> SMTPUTF8");
    EXPECT_FALSE(invalid.value);
    EXPECT_EQ(invalid.error, Reply::bad_sender);
}

TEST(ParseMailFrom, AllParameters) {
    const auto m = parse_mail_from("FROM:<a@b.example>   SIZE=100  BODY=8BITMIME SMTPUTF8  ");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->size, 100u);
    EXPECT_EQ(m.value->body, BodyType::eight_bit_mime);
    EXPECT_TRUE(m.value->smtputf8);
}

TEST(ParseMailFrom, UnknownParameters) {
    expect_mail_from_refused({"FROM:<a@b.example> AUTH=<>", "FROM:<a@b.example> RET=HDRS",
                                "FROM:<a@b.example> ENVID=QQ314159", "FROM:<a@b.example> XFOO",
                                "FROM:<a@b.example> SIZE=10 MT-PRIORITY=3", "FROM:<a@b.example> REQUIRETLS",
                                "FROM:<a@b.example> SIZES=1", "FROM:<> HOLDFOR=10"},
                             Reply::unknown_parameter);
}

TEST(ParseMailFrom, MalformedParameters) {
    expect_mail_from_refused({"FROM:<a@b.example>SIZE=10", "FROM:<a@b.example> =10", "FROM:<a@b.example> -X",
                            "FROM:<a@b.example> X_Y", "FROM:<a@b.example> X=", "FROM:<a@b.example> X=a=b",
                            "FROM:<a@b.example> X=\xc3\xa9", "FROM:<a@b.example>\tSIZE=1",
                            "FROM:<a@b.example> X=\x01"},
                             Reply::syntax);
}

TEST(ParseMailFrom, QuotedPathWithSpacesAndBrackets) {
    // Parameters are only what follows the path's real closing bracket.
    const auto m = parse_mail_from(R"(FROM:<"a> SIZE=1 b"@example.org> SIZE=2)");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->size, 2u);
    EXPECT_EQ(m.value->sender.local, R"("a> SIZE=1 b")");
    const auto esc = parse_mail_from(R"(FROM:<"a\"> X"@example.org>)");
    ASSERT_TRUE(esc.value);
    EXPECT_EQ(esc.value->sender.domain, "example.org");
}

TEST(ParseMailFrom, SourceRoute) {
    const auto m = parse_mail_from("FROM:<@hop.example:a@b.example> SIZE=1");
    ASSERT_TRUE(m.value);
    EXPECT_EQ(m.value->sender.address(), "a@b.example");
}

TEST(ParseRcptTo, Basic) {
    const auto r = parse_rcpt_to("TO:<rcpt@example.org>", false);
    ASSERT_TRUE(r.value);
    EXPECT_EQ(r.value->recipient.address(), "rcpt@example.org");
    for (const char* ok : {"to:<a@b.example>", "To: <a@b.example>", "TO:<a@b.example>   ", " TO:<a@b.example>"}) {
        SCOPED_TRACE(ok);
        const auto p = parse_rcpt_to(ok, false);
        ASSERT_TRUE(p.value);
        EXPECT_EQ(p.value->recipient.domain, "b.example");
    }
}

TEST(ParseRcptTo, Errors) {
    expect_rcpt_to_refused({"", "<a@b.example>", "TO <a@b.example>", "FROM:<a@b.example>", "T:<a@b.example>"},
                           Reply::syntax);
    expect_rcpt_to_refused({"TO:<>", "TO:", "TO:a@b.example", "TO:<a@b.example", "TO:<a@b@c.example>",
                            "TO:<user%other@>", "TO:<postmaster>"},
                           Reply::bad_recipient);
}

TEST(ParseRcptTo, NoParametersAccepted) {
    expect_rcpt_to_refused({"TO:<a@b.example> NOTIFY=NEVER", "TO:<a@b.example> ORCPT=rfc822;a@b.example",
                                "TO:<a@b.example> SIZE=1", "TO:<a@b.example> SMTPUTF8", "TO:<a@b.example> X"},
                           Reply::unknown_parameter);
    EXPECT_EQ(parse_rcpt_to("TO:<a@b.example>X", false).error, Reply::syntax);
    EXPECT_EQ(parse_rcpt_to("TO:<a@b.example> X=", false).error, Reply::syntax);
    EXPECT_EQ(parse_rcpt_to("TO:<a@b.example> @", false).error, Reply::syntax);
}

TEST(ParseRcptTo, Utf8FollowsTheTransaction) {
    const std::string arg = "TO:<\xe7\x94\xa8\xe6\x88\xb7@example.org>";
    EXPECT_EQ(parse_rcpt_to(arg, false).error, Reply::needs_smtputf8);
    const auto r = parse_rcpt_to(arg, true);
    ASSERT_TRUE(r.value);
    EXPECT_TRUE(r.value->recipient.non_ascii);
    EXPECT_EQ(parse_rcpt_to("TO:<\xe7\x94@example.org>", true).error, Reply::bad_recipient);
}

TEST(ParseRcptTo, RelayDomainCannotBeSmuggled) {
    const std::pair<const char*, const char*> cases[] = {
        {"TO:<user%victim.example@served.example>", "served.example"},
        {"TO:<victim.example!user@served.example>", "served.example"},
        {"TO:<\"user@victim.example\"@served.example>", "served.example"},
        {"TO:<@victim.example:user@served.example>", "served.example"},
        {"TO:<@served.example:user@victim.example>", "victim.example"},
        {"TO:<user@[192.0.2.7]>", "[192.0.2.7]"},
    };
    for (const auto& [arg, domain] : cases) {
        SCOPED_TRACE(arg);
        const auto r = parse_rcpt_to(arg, false);
        ASSERT_TRUE(r.value);
        EXPECT_EQ(r.value->recipient.domain, domain);
    }
}

TEST(ParseBdat, Valid) {
    auto b = parse_bdat("1234");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->size, 1234u);
    EXPECT_FALSE(b->last);
    b = parse_bdat("0 LAST");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->size, 0u);
    EXPECT_TRUE(b->last);
    b = parse_bdat("86 last");
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->last);
    b = parse_bdat("18446744073709551615 LaSt");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->size, 18446744073709551615u);
}

TEST(ParseBdat, Invalid) {
    for (const char* bad : {"", " ", "LAST", "10 LASTX", "10 LAS", "10 FIRST", "10 LAST X", "-1", "+1", "1e3",
                            "0x10", "10  LAST", " 10", "10 ", "18446744073709551616", "99999999999999999999999 LAST",
                            "10\tLAST", "1 2"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(parse_bdat(bad));
    }
}
