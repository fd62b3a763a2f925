// parse_path: RFC 5321 4.1.2 paths as a hostile client would send them.
#include <gtest/gtest.h>

#include <string>

#include "relay/address.h"

using namespace edgerelay::relay;

namespace {

PathParse rcpt(std::string_view text, bool smtputf8 = false) { return parse_path(text, false, smtputf8); }
PathParse sender(std::string_view text, bool smtputf8 = false) { return parse_path(text, true, smtputf8); }

// The domain a recipient path would be relayed to, or "!" and the reply when refused.
std::string domain_of(std::string_view text) {
    const PathParse p = rcpt(text);
    if (!p.ok) return "!" + std::to_string(reply_info(p.error).code);
    return p.mailbox.domain;
}

}  // namespace

TEST(ParsePath, Plain) {
    const PathParse p = rcpt("<user@example.org>");
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.mailbox.local, "user");
    EXPECT_EQ(p.mailbox.domain, "example.org");
    EXPECT_FALSE(p.mailbox.domain_is_literal);
    EXPECT_FALSE(p.mailbox.non_ascii);
    EXPECT_EQ(p.mailbox.address(), "user@example.org");
    EXPECT_TRUE(p.rest.empty());
}

TEST(ParsePath, RestIsWhatFollowsTheBracket) {
    const PathParse p = sender("<a@b.c> SIZE=100 BODY=8BITMIME");
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.rest, " SIZE=100 BODY=8BITMIME");
    const PathParse q = rcpt("   <a@b.c>x");  // leading spaces allowed; rest judged by caller
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.rest, "x");
}

TEST(ParsePath, AtextAndDots) {
    for (const char* ok : {"<a.b.c@x.y>", "<!#$%&'*+-/=?^_`{|}~@x.y>", "<first.last+tag@sub.example.org>",
                           "<0@0.0>", "<a@x>"}) {
        SCOPED_TRACE(ok);
        EXPECT_TRUE(rcpt(ok).ok);
    }
    for (const char* bad : {"<.a@x.y>", "<a.@x.y>", "<a..b@x.y>", "<@x.y>", "<a b@x.y>", "<a(b)@x.y>",
                            "<a,b@x.y>", "<a;b@x.y>", "<a[b]@x.y>", "<a\\b@x.y>", "<a:b@x.y>", "<a<b@x.y>",
                            "<a\"b\"@x.y>"}) {
        SCOPED_TRACE(bad);
        const PathParse p = rcpt(bad);
        EXPECT_FALSE(p.ok);
        EXPECT_EQ(p.error, Reply::bad_recipient);
    }
}

TEST(ParsePath, NullPathOnlyForSender) {
    const PathParse s = sender("<>");
    ASSERT_TRUE(s.ok);
    EXPECT_TRUE(s.mailbox.null());
    EXPECT_EQ(s.mailbox.address(), "");
    const PathParse s2 = sender("<> SIZE=1");
    ASSERT_TRUE(s2.ok);
    EXPECT_EQ(s2.rest, " SIZE=1");

    const PathParse r = rcpt("<>");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, Reply::bad_recipient);
    EXPECT_FALSE(sender("< >").ok);
    EXPECT_FALSE(sender("<").ok);
}

TEST(ParsePath, ErrorsNameTheRole) {
    EXPECT_EQ(sender("<a@@b>").error, Reply::bad_sender);
    EXPECT_EQ(rcpt("<a@@b>").error, Reply::bad_recipient);
    EXPECT_EQ(reply_info(sender("<a@@b>").error).enhanced, "5.1.7");
    EXPECT_EQ(reply_info(rcpt("<a@@b>").error).enhanced, "5.1.3");
}

TEST(ParsePath, AngleBracketsRequired) {
    for (const char* bad : {"user@example.org", "<user@example.org", "user@example.org>", "", "   ",
                            "<user@example.org >", "< user@example.org>", "<<user@example.org>>"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(rcpt(bad).error, Reply::bad_recipient);
        EXPECT_FALSE(rcpt(bad).ok);
        EXPECT_EQ(sender(bad).error, Reply::bad_sender);
    }
}

TEST(ParsePath, NoDomainIsRefused) {
    // Not even <postmaster>: a relay decides on the domain and there is none.
    EXPECT_FALSE(rcpt("<postmaster>").ok);
    EXPECT_FALSE(rcpt("<user>").ok);
    EXPECT_FALSE(rcpt("<user@>").ok);
}

TEST(ParsePath, SourceRouteIsDropped) {
    const PathParse p = rcpt("<@relay1.example,@relay2.example:user@final.example>");
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.mailbox.local, "user");
    EXPECT_EQ(p.mailbox.domain, "final.example");
    EXPECT_EQ(p.mailbox.address(), "user@final.example");

    const PathParse one = sender("<@a.example:x@y.example>");
    ASSERT_TRUE(one.ok);
    EXPECT_EQ(one.mailbox.domain, "y.example");

    for (const char* bad : {"<@a.example:>", "<@a.example user@b>", "<@:user@b.example>", "<@a,b:user@c>",
                            "<@a.example,:user@b>", "<@a.example;@b:user@c>", "<@-a.example:user@b>",
                            "<@[1.2.3.4]:user@b>", "<@a.example:@b.example>"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(rcpt(bad).ok);
        EXPECT_EQ(rcpt(bad).error, Reply::bad_recipient);
    }
}

TEST(ParsePath, RelayDomainIsAfterTheFinalUnquotedAt) {
    // Percent hack and bang paths are plain local-part characters: they route nowhere.
    EXPECT_EQ(domain_of("<user%victim.example@served.example>"), "served.example");
    EXPECT_EQ(rcpt("<user%victim.example@served.example>").mailbox.local, "user%victim.example");
    EXPECT_EQ(domain_of("<victim.example!user@served.example>"), "served.example");
    EXPECT_EQ(rcpt("<victim.example!user@served.example>").mailbox.local, "victim.example!user");
    EXPECT_EQ(domain_of("<a!b%c@served.example>"), "served.example");
    // Something after the domain never counts as the domain.
    EXPECT_EQ(domain_of("<user@victim.example@served.example>"), "!501");
    EXPECT_EQ(domain_of("<user@served.example@victim.example>"), "!501");
    EXPECT_EQ(domain_of("<user@served.example%victim.example>"), "!501");
    EXPECT_EQ(domain_of("<user@served.example!victim>"), "!501");
    EXPECT_EQ(domain_of("<user@served.example:25>"), "!501");
    EXPECT_EQ(domain_of("<user@served.example/victim>"), "!501");
    EXPECT_EQ(domain_of("<user@served.example>victim.example>"), "served.example");
    // Look-alikes are exactly what was written.
    EXPECT_EQ(domain_of("<user@served.example.victim.example>"), "served.example.victim.example");
    EXPECT_EQ(domain_of("<user@victim-served.example>"), "victim-served.example");
    EXPECT_EQ(domain_of("<user@SERVED.Example>"), "SERVED.Example");
    EXPECT_EQ(lowercase_domain(rcpt("<user@SERVED.Example>").mailbox.domain), "served.example");
}

TEST(ParsePath, QuotedLocalPart) {
    const PathParse p = rcpt("<\"user@victim.example\"@served.example>");
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.mailbox.local, "\"user@victim.example\"");
    EXPECT_EQ(p.mailbox.domain, "served.example");

    const PathParse spaces = rcpt("<\"john smith\"@example.org>");
    ASSERT_TRUE(spaces.ok);
    EXPECT_EQ(spaces.mailbox.local, "\"john smith\"");

    // Quoted pairs: an escaped quote or backslash does not end the string.
    const PathParse pair = rcpt(R"(<"a\"b\\c@evil>"@served.example>)");
    ASSERT_TRUE(pair.ok);
    EXPECT_EQ(pair.mailbox.local, R"("a\"b\\c@evil>")");
    EXPECT_EQ(pair.mailbox.domain, "served.example");
    EXPECT_TRUE(pair.rest.empty());

    EXPECT_TRUE(rcpt("<\"\"@example.org>").ok);
    EXPECT_TRUE(rcpt("<\"a..b.\"@example.org>").ok);
    EXPECT_EQ(domain_of("<\"a\"@served.example>"), "served.example");

    for (const char* bad : {"<\"abc@example.org>", "<\"abc\"@>", "<\"a\"b@example.org>", "<a\"b\"@example.org>",
                            "<\"a\".b@example.org>", "<\"a\\\"@example.org>", "<\"abc\">",
                            "<\"a\"@\"b\">"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(rcpt(bad).ok);
    }
}

TEST(ParsePath, ControlCharacters) {
    for (std::string bad : {std::string("<a\tb@x.y>"), std::string("<a@x\ty>"), std::string("<a\x01@x.y>"),
                            std::string("<a\x7f@x.y>"), std::string("<\"a\tb\"@x.y>"), std::string("<\"a\x7f\"@x.y>"),
                            std::string("<\"a\\\x01\"@x.y>"), std::string("<a\r\n@x.y>"), std::string("<a@x.y\r>"),
                            std::string("<a\0b@x.y>", 9), std::string("<\"a\0\"@x.y>", 10)}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(rcpt(bad).error, Reply::bad_recipient);
        EXPECT_FALSE(rcpt(bad).ok);
        EXPECT_FALSE(rcpt(bad, true).ok);
        EXPECT_EQ(sender(bad).error, Reply::bad_sender);
    }
}

TEST(ParsePath, DomainLabels) {
    EXPECT_TRUE(rcpt("<a@a-b.example>").ok);
    EXPECT_TRUE(rcpt("<a@a--b.example>").ok);
    EXPECT_TRUE(rcpt("<a@123.example>").ok);
    EXPECT_TRUE(rcpt("<a@localhost>").ok);
    for (const char* bad : {"<a@-a.example>", "<a@a-.example>", "<a@a.example->", "<a@.example>",
                            "<a@example.>", "<a@a..example>", "<a@a_b.example>", "<a@a b.example>",
                            "<a@a*b.example>", "<a@[1.2.3.4].example>"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(rcpt(bad).error, Reply::bad_recipient);
    }
}

TEST(ParsePath, LengthLimits) {
    const std::string label63(63, 'd');
    EXPECT_TRUE(rcpt("<a@" + label63 + ".example>").ok);
    EXPECT_FALSE(rcpt("<a@" + label63 + "d.example>").ok);

    const std::string local64(64, 'l');
    EXPECT_TRUE(rcpt("<" + local64 + "@x.example>").ok);
    EXPECT_EQ(rcpt("<" + local64 + "l@x.example>").error, Reply::bad_recipient);
    EXPECT_EQ(sender("<" + local64 + "l@x.example>").error, Reply::bad_sender);
    // Quotes count: the local part is measured as written.
    EXPECT_TRUE(rcpt("<\"" + std::string(62, 'q') + "\"@x.example>").ok);
    EXPECT_FALSE(rcpt("<\"" + std::string(63, 'q') + "\"@x.example>").ok);

    // The path limit (256 with brackets) binds before the domain limit (255): "<a@" +
    // 252 + ">" is the longest domain that fits.
    const std::string dom252 = label63 + "." + label63 + "." + label63 + "." + std::string(60, 'e');
    ASSERT_EQ(dom252.size(), 252u);
    const PathParse ok = rcpt("<a@" + dom252 + ">");
    ASSERT_TRUE(ok.ok);
    EXPECT_EQ(ok.mailbox.domain, dom252);
    EXPECT_FALSE(rcpt("<a@" + dom252 + "e>").ok);
    EXPECT_FALSE(rcpt("<a@" + dom252 + std::string(4, 'e') + ">").ok);  // 256-octet domain
    // Whole path 256 octets including the brackets: local 64 + "@" + domain 189 + "<>".
    const std::string dom189 = label63 + "." + label63 + "." + std::string(61, 'e');
    ASSERT_EQ(dom189.size(), 189u);
    EXPECT_TRUE(rcpt("<" + local64 + "@" + dom189 + ">").ok);
    EXPECT_FALSE(rcpt("<" + local64 + "@" + dom189 + "e>").ok);
    // A source route counts toward the path.
    EXPECT_FALSE(rcpt("<@" + dom189 + ":" + local64 + "@x>").ok);

    // Far over every limit: refused, not crashed.
    EXPECT_FALSE(rcpt("<" + std::string(100000, 'a') + "@x.example>").ok);
    EXPECT_FALSE(rcpt("<a@" + std::string(100000, 'a') + ">").ok);
}

TEST(ParsePath, AddressLiterals) {
    const PathParse v4 = rcpt("<postmaster@[192.0.2.1]>");
    ASSERT_TRUE(v4.ok);
    EXPECT_EQ(v4.mailbox.domain, "[192.0.2.1]");
    EXPECT_TRUE(v4.mailbox.domain_is_literal);
    EXPECT_EQ(v4.mailbox.address(), "postmaster@[192.0.2.1]");

    const PathParse v6 = rcpt("<a@[IPv6:2001:db8::1]>");
    ASSERT_TRUE(v6.ok);
    EXPECT_EQ(v6.mailbox.domain, "[IPv6:2001:db8::1]");
    EXPECT_TRUE(v6.mailbox.domain_is_literal);
    EXPECT_TRUE(rcpt("<a@[ipv6:::1]>").ok);
    EXPECT_TRUE(rcpt("<a@[IPv6:::ffff:192.0.2.1]>").ok);
    EXPECT_TRUE(rcpt("<a@[IPv6:2001:db8:0:0:0:0:0:1]>").ok);

    for (const char* bad : {"<a@[192.0.2.256]>", "<a@[192.0.2]>", "<a@[192.0.2.1.5]>", "<a@[1.2.3.4x]>",
                            "<a@[ 1.2.3.4]>", "<a@[]>", "<a@[IPv6:]>", "<a@[IPv6:1.2.3.4]>",
                            "<a@[2001:db8::1]>", "<a@[IPv6:2001:db8::1%eth0]>", "<a@[IPv6:2001:db8:::1]>",
                            "<a@[IPv6:12345::]>", "<a@[x-tag:foo]>", "<a@[192.0.2.1>", "<a@[192.0.2.1]x>",
                            "<a@[192.0.2.1].example>", "<a@192.0.2.1]>", "<a@[0x7f.0.0.1]>",
                            "<a@[IPv6:2001:db8::1]]>"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(rcpt(bad).error, Reply::bad_recipient);
        EXPECT_FALSE(rcpt(bad).ok);
    }
    EXPECT_FALSE(rcpt("<a@[" + std::string(200, '1') + "]>").ok);
    // A bare dotted quad is a (numeric) domain name, not a literal.
    const PathParse dotted = rcpt("<a@192.0.2.1>");
    ASSERT_TRUE(dotted.ok);
    EXPECT_FALSE(dotted.mailbox.domain_is_literal);
}

TEST(ParsePath, Utf8NeedsSmtputf8) {
    const std::string local = "<j\xc3\xb6rg@example.org>";              // jörg
    const std::string domain = "<a@b\xc3\xbc\x63her.example>";          // bücher
    const std::string quoted = "<\"j\xc3\xb6rg x\"@example.org>";
    const std::string cjk = "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8>";
    const std::string emoji = "<\xf0\x9f\x98\x80@example.org>";
    for (const std::string& s : {local, domain, quoted, cjk, emoji}) {
        SCOPED_TRACE(s);
        EXPECT_EQ(rcpt(s).error, Reply::needs_smtputf8);
        EXPECT_FALSE(rcpt(s).ok);
        EXPECT_EQ(sender(s).error, Reply::needs_smtputf8);
        const PathParse p = rcpt(s, true);
        ASSERT_TRUE(p.ok);
        EXPECT_TRUE(p.mailbox.non_ascii);
    }
    const PathParse p = rcpt(domain, true);
    EXPECT_EQ(p.mailbox.domain, "b\xc3\xbc\x63her.example");
    EXPECT_EQ(p.mailbox.local, "a");
    EXPECT_EQ(lowercase_domain("B\xc3\x9c\x43HER.Example"), "b\xc3\x9c\x63her.example");  // ASCII only

    // ASCII under SMTPUTF8 stays ASCII.
    const PathParse ascii = rcpt("<a@b.example>", true);
    ASSERT_TRUE(ascii.ok);
    EXPECT_FALSE(ascii.mailbox.non_ascii);
    // A non-ASCII source route is dropped with the route.
    const PathParse route = rcpt("<@r\xc3\xa9.example:a@b.example>", true);
    ASSERT_TRUE(route.ok);
    EXPECT_FALSE(route.mailbox.non_ascii);
    EXPECT_EQ(rcpt("<@r\xc3\xa9.example:a@b.example>").error, Reply::needs_smtputf8);
}

TEST(ParsePath, InvalidUtf8IsRefused) {
    for (const char* bad : {
             "<\xc3@example.org>",              // truncated
             "<\xc3(@example.org>",             // bad continuation
             "<\x80@example.org>",              // lone continuation octet
             "<\xc0\xaf@example.org>",          // overlong '/'
             "<\xc1\xbf@example.org>",          // overlong
             "<\xe0\x80\xaf@example.org>",      // overlong 3-octet
             "<\xf0\x80\x80\xaf@example.org>",  // overlong 4-octet
             "<\xed\xa0\x80@example.org>",      // UTF-16 surrogate
             "<\xf4\x90\x80\x80@example.org>",  // above U+10FFFF
             "<\xf5\x80\x80\x80@example.org>",  // invalid lead
             "<\xff@example.org>",
             "<\xc2\x85@example.org>",          // U+0085, a C1 control
             "<a@ex\xe2\x82.org>",              // truncated in the domain
             "<\"\xe2\x82\"@example.org>",      // truncated in a quoted string
             "<\"\\\xc3\xa9\"@example.org>",    // quoted-pair is ASCII only
             "<a@[\xc3\xa9]>",                  // not in a literal
         }) {
        SCOPED_TRACE(bad);
        const PathParse p = rcpt(bad, true);
        EXPECT_FALSE(p.ok);
        EXPECT_EQ(p.error, Reply::bad_recipient);
        EXPECT_EQ(sender(bad, true).error, Reply::bad_sender);
    }
    // The largest valid code points and the edges around the surrogates are fine.
    for (const char* good : {"<\xf4\x8f\xbf\xbf@x.example>", "<\xed\x9f\xbf@x.example>", "<\xee\x80\x80@x.example>",
                             "<\xc2\xa0@x.example>", "<\xdf\xbf@x.example>"}) {
        SCOPED_TRACE(good);
        EXPECT_TRUE(rcpt(good, true).ok);
    }
}

TEST(ParsePath, Utf8LengthsAreOctets) {
    // 32 two-octet characters = 64 octets: fits; one more does not.
    std::string local;
    for (int i = 0; i < 32; ++i) local += "\xc3\xa9";
    EXPECT_TRUE(rcpt("<" + local + "@x.example>", true).ok);
    EXPECT_FALSE(rcpt("<" + local + "a@x.example>", true).ok);
}

TEST(LowercaseDomain, AsciiOnly) {
    EXPECT_EQ(lowercase_domain("Example.ORG"), "example.org");
    EXPECT_EQ(lowercase_domain("[IPv6:2001:DB8::1]"), "[ipv6:2001:db8::1]");
    EXPECT_EQ(lowercase_domain(""), "");
    EXPECT_EQ(lowercase_domain("@[\\`{"), "@[\\`{");  // neighbours of A-Z untouched
}

TEST(AsciiIequals, Basic) {
    EXPECT_TRUE(ascii_iequals("MAIL", "mail"));
    EXPECT_TRUE(ascii_iequals("", ""));
    EXPECT_FALSE(ascii_iequals("MAIL", "MAILX"));
    EXPECT_FALSE(ascii_iequals("@", "`"));
    EXPECT_FALSE(ascii_iequals("\xc3\x89", "\xc3\xa9"));
}
