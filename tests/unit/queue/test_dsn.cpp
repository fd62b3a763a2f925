// Delivery status notifications: each report is parsed back as MIME (boundary, three
// parts, per-recipient groups) and checked on the wire (CRLF only, lines <= 998 octets),
// including hostile remote replies, boundary collisions and UTF-8 addresses.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "queue/dsn.h"

namespace edgerelay::queue {
namespace {

constexpr UnixMicros arrival = 1795000000000000;   // Wed, 18 Nov 2026 11:06:40 +0000
constexpr UnixMicros now = 1795660571123456;       // Thu, 26 Nov 2026 02:36:11 +0000

const std::string original_headers =
    "Received: from client.example (unknown [192.0.2.7])\r\n"
    "\tby relay.example (edgerelay) with ESMTP id 0006123456789ABC\r\n"
    "From: Scrooge <scrooge@duckburg.example>\r\n"
    "To: donald@duckburg.example, daisy@duckburg.example\r\n"
    "Subject: Money bin\r\n"
    "Message-ID: <orig-1@duckburg.example>\r\n";
const std::string original_content = original_headers + "\r\nThe body, never returned.\r\n";

// ---- a small MIME reader, enough to take a report apart ----

struct Field {
    std::string name;
    std::string value;
};
using Fields = std::vector<Field>;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    while (!text.empty()) {
        const std::size_t eol = text.find("\r\n");
        lines.emplace_back(text.substr(0, eol));
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 2);
    }
    return lines;
}

// Header-style fields, unfolded (RFC 5322 2.2.3).
Fields parse_fields(std::string_view block) {
    Fields fields;
    for (const std::string& line : split_lines(block)) {
        if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
            if (fields.empty()) ADD_FAILURE() << "continuation without a field: " << line;
            else fields.back().value += line;
            continue;
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) {
            ADD_FAILURE() << "not a field: " << line;
            continue;
        }
        std::string value = line.substr(colon + 1);
        value.erase(0, std::min(value.find_first_not_of(' '), value.size()));
        fields.push_back({line.substr(0, colon), value});
    }
    return fields;
}

std::optional<std::string> get(const Fields& fields, std::string_view name) {
    for (const Field& f : fields)
        if (iequals(f.name, name)) return f.value;
    return std::nullopt;
}

std::size_t count(const Fields& fields, std::string_view name) {
    return static_cast<std::size_t>(
        std::count_if(fields.begin(), fields.end(), [&](const Field& f) { return iequals(f.name, name); }));
}

struct Part {
    Fields headers;
    std::string body;
};

struct Report {
    Fields headers;
    std::string boundary;
    std::vector<Part> parts;
};

// Splits "fields CRLF CRLF body"; a block with no body has only fields.
std::pair<std::string, std::string> split_entity(std::string_view entity) {
    const std::size_t blank = entity.find("\r\n\r\n");
    if (blank == std::string_view::npos) return {std::string(entity), ""};
    return {std::string(entity.substr(0, blank + 2)), std::string(entity.substr(blank + 4))};
}

// Every line ends in CRLF, no bare CR or LF, no line over 998 octets (RFC 5322 2.1.1).
void expect_wire_format(const std::string& message) {
    ASSERT_GE(message.size(), 2u);
    EXPECT_EQ(message.substr(message.size() - 2), "\r\n");
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < message.size(); ++i) {
        if (message[i] == '\r') {
            ASSERT_TRUE(i + 1 < message.size() && message[i + 1] == '\n') << "bare CR at " << i;
        } else if (message[i] == '\n') {
            ASSERT_TRUE(i > 0 && message[i - 1] == '\r') << "bare LF at " << i;
            EXPECT_LE(i - 1 - line_start, 998u) << "line at " << line_start;
            line_start = i + 1;
        } else if (message[i] == '\0') {
            ADD_FAILURE() << "NUL at " << i;
        }
    }
}

Report parse_report(const std::string& message) {
    Report report;
    const auto [head, body] = split_entity(message);
    report.headers = parse_fields(head);
    const std::string type = get(report.headers, "Content-Type").value_or("");
    const std::size_t b = type.find("boundary=\"");
    if (b == std::string::npos) {
        ADD_FAILURE() << "no boundary in " << type;
        return report;
    }
    report.boundary = type.substr(b + 10, type.find('"', b + 10) - (b + 10));
    EXPECT_FALSE(report.boundary.empty());
    EXPECT_LE(report.boundary.size(), 70u);  // RFC 2046 5.1.1

    // The delimiter is CRLF "--" boundary; the close delimiter adds "--".
    const std::string delimiter = "\r\n--" + report.boundary;
    std::vector<std::size_t> at;
    for (std::size_t p = body.find(delimiter); p != std::string::npos; p = body.find(delimiter, p + 1)) at.push_back(p);
    if (at.empty()) {
        ADD_FAILURE() << "no delimiter";
        return report;
    }
    for (std::size_t i = 0; i + 1 < at.size(); ++i) {
        const std::size_t start = at[i] + delimiter.size();
        EXPECT_EQ(body.substr(start, 2), "\r\n") << "delimiter line has trailing text";
        const auto [part_head, part_body] = split_entity(std::string_view(body).substr(start + 2, at[i + 1] - start - 2));
        report.parts.push_back({parse_fields(part_head), part_body});
    }
    EXPECT_EQ(body.substr(at.back() + delimiter.size()), "--\r\n") << "close delimiter";
    return report;
}

// The per-message block and the per-recipient groups of a message/delivery-status body.
std::vector<Fields> status_groups(const std::string& body) {
    std::vector<Fields> groups;
    std::string block;
    for (const std::string& line : split_lines(body)) {
        if (line.empty()) {
            if (!block.empty()) groups.push_back(parse_fields(block));
            block.clear();
        } else {
            block += line + "\r\n";
        }
    }
    if (!block.empty()) groups.push_back(parse_fields(block));
    return groups;
}

std::string unfold(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text.substr(i, 3) == "\r\n " || text.substr(i, 3) == "\r\n\t") {
            ++i;
            continue;
        }
        out += text[i];
    }
    return out;
}

bool has_8bit(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// ---- fixtures ----

Envelope original_envelope() {
    Envelope e;
    e.queue_id = "0006123456789ABC";
    e.arrival = arrival;
    e.sender = "scrooge@duckburg.example";
    e.message_id = "orig-1@duckburg.example";
    Recipient donald{"donald@duckburg.example"};
    donald.last_attempt = now - 60'000'000;  // Thu, 26 Nov 2026 02:35:11 +0000
    e.recipients.push_back(donald);
    e.recipients.push_back(Recipient{"daisy@duckburg.example"});
    return e;
}

DsnRequest request_for(const Envelope& e, DsnKind kind) {
    DsnRequest r;
    r.kind = kind;
    r.reporting_mta = "relay.example";
    r.postmaster = "MAILER-DAEMON@relay.example";
    r.original = &e;
    r.original_content = original_content;
    r.now = now;
    r.message_id = "0006AAAABBBBCCCC@relay.example";
    if (kind == DsnKind::failure) {
        r.recipients.push_back({"donald@duckburg.example", "5.1.1", "mx1.duckburg.example",
                                "550 5.1.1 <donald@duckburg.example>: Recipient address rejected: User unknown"});
        r.recipients.push_back({"daisy@duckburg.example", "5.4.4", "", ""});
    } else {
        r.recipients.push_back({"donald@duckburg.example", "4.2.2", "mx1.duckburg.example", "452 4.2.2 Mailbox full"});
    }
    return r;
}

std::string build_checked(const DsnRequest& request) {
    std::string message = build_dsn(request);
    expect_wire_format(message);
    return message;
}

// ---- tests ----

TEST(Dsn, FailureReportHeaders) {
    const Envelope e = original_envelope();
    const Report report = parse_report(build_checked(request_for(e, DsnKind::failure)));
    const Fields& h = report.headers;
    EXPECT_EQ(get(h, "From"), "Mail Delivery System <MAILER-DAEMON@relay.example>");
    EXPECT_EQ(get(h, "To"), "<scrooge@duckburg.example>");
    EXPECT_EQ(get(h, "Subject"), "Undelivered Mail Returned to Sender");
    EXPECT_EQ(get(h, "Date"), "Thu, 26 Nov 2026 02:36:11 +0000");
    EXPECT_EQ(get(h, "Message-ID"), "<0006AAAABBBBCCCC@relay.example>");
    EXPECT_EQ(get(h, "Auto-Submitted"), "auto-replied");
    EXPECT_EQ(get(h, "MIME-Version"), "1.0");
    const std::string type = get(h, "Content-Type").value_or("");
    EXPECT_EQ(type.rfind("multipart/report;", 0), 0u) << type;
    EXPECT_NE(type.find("report-type=delivery-status"), std::string::npos);
    EXPECT_NE(report.boundary.find("0006123456789ABC"), std::string::npos) << "derived from the queue id";
    for (const char* name : {"From", "To", "Subject", "Date", "Message-ID", "Content-Type"}) EXPECT_EQ(count(h, name), 1u) << name;
    EXPECT_FALSE(get(h, "Content-Transfer-Encoding").has_value() && *get(h, "Content-Transfer-Encoding") != "7bit");
}

TEST(Dsn, ThreePartsInOrder) {
    const Envelope e = original_envelope();
    const Report report = parse_report(build_checked(request_for(e, DsnKind::failure)));
    ASSERT_EQ(report.parts.size(), 3u);
    EXPECT_EQ(get(report.parts[0].headers, "Content-Type")->rfind("text/plain", 0), 0u);
    EXPECT_EQ(get(report.parts[1].headers, "Content-Type"), "message/delivery-status");
    EXPECT_EQ(get(report.parts[2].headers, "Content-Type"), "text/rfc822-headers");
    for (const Part& p : report.parts) EXPECT_EQ(get(p.headers, "Content-Transfer-Encoding"), "7bit");
}

TEST(Dsn, HumanPartNamesRecipientsAndReasons) {
    const Envelope e = original_envelope();
    const Report report = parse_report(build_checked(request_for(e, DsnKind::failure)));
    ASSERT_EQ(report.parts.size(), 3u);
    const std::string text = unfold(report.parts[0].body);
    EXPECT_NE(text.find("donald@duckburg.example"), std::string::npos);
    EXPECT_NE(text.find("daisy@duckburg.example"), std::string::npos);
    EXPECT_NE(text.find("Recipient address rejected: User unknown"), std::string::npos);
    EXPECT_NE(text.find("relay.example"), std::string::npos);
}

TEST(Dsn, DeliveryStatusFields) {
    const Envelope e = original_envelope();
    const Report report = parse_report(build_checked(request_for(e, DsnKind::failure)));
    ASSERT_EQ(report.parts.size(), 3u);
    const std::vector<Fields> groups = status_groups(report.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);  // per-message, then one per recipient

    const Fields& message = groups[0];
    EXPECT_EQ(get(message, "Reporting-MTA"), "dns; relay.example");
    EXPECT_EQ(get(message, "Arrival-Date"), "Wed, 18 Nov 2026 11:06:40 +0000");
    EXPECT_FALSE(get(message, "Original-Envelope-Id"));
    EXPECT_FALSE(get(message, "Final-Recipient"));

    const Fields& donald = groups[1];
    EXPECT_EQ(get(donald, "Final-Recipient"), "rfc822; donald@duckburg.example");
    EXPECT_EQ(get(donald, "Action"), "failed");
    EXPECT_EQ(get(donald, "Status"), "5.1.1");
    EXPECT_EQ(get(donald, "Remote-MTA"), "dns; mx1.duckburg.example");
    EXPECT_EQ(get(donald, "Diagnostic-Code"),
              "smtp; 550 5.1.1 <donald@duckburg.example>: Recipient address rejected: User unknown");
    EXPECT_EQ(get(donald, "Last-Attempt-Date"), "Thu, 26 Nov 2026 02:35:11 +0000");

    const Fields& daisy = groups[2];
    EXPECT_EQ(get(daisy, "Final-Recipient"), "rfc822; daisy@duckburg.example");
    EXPECT_EQ(get(daisy, "Action"), "failed");
    EXPECT_EQ(get(daisy, "Status"), "5.4.4");
    EXPECT_FALSE(get(daisy, "Remote-MTA")) << "omitted when no host answered";
    EXPECT_FALSE(get(daisy, "Diagnostic-Code")) << "omitted when empty";
    EXPECT_FALSE(get(daisy, "Last-Attempt-Date")) << "never attempted";
}

TEST(Dsn, ReturnsOriginalHeadersOnly) {
    const Envelope e = original_envelope();
    const std::string message = build_checked(request_for(e, DsnKind::failure));
    const Report report = parse_report(message);
    ASSERT_EQ(report.parts.size(), 3u);
    EXPECT_EQ(report.parts[2].body, original_headers);
    EXPECT_EQ(message.find("The body, never returned."), std::string::npos);
}

TEST(Dsn, DelayDiffersFromFailure) {
    const Envelope e = original_envelope();
    const Report report = parse_report(build_checked(request_for(e, DsnKind::delay)));
    EXPECT_EQ(get(report.headers, "Subject"), "Delayed Mail (still being retried)");
    ASSERT_EQ(report.parts.size(), 3u);
    const std::string text = unfold(report.parts[0].body);
    EXPECT_NE(text.find("will be retried"), std::string::npos);
    EXPECT_NE(text.find("until when is not known"), std::string::npos);
    EXPECT_NE(text.find("Mailbox full"), std::string::npos);
    const std::vector<Fields> groups = status_groups(report.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(get(groups[1], "Action"), "delayed");
    EXPECT_EQ(get(groups[1], "Status"), "4.2.2");
    EXPECT_FALSE(get(groups[1], "Will-Retry-Until")) << "not known, so not claimed";

    const Report failure = parse_report(build_dsn(request_for(e, DsnKind::failure)));
    EXPECT_EQ(unfold(failure.parts[0].body).find("will be retried"), std::string::npos);
}

TEST(Dsn, MalformedStatusFallsBackToGenericCode) {
    const Envelope e = original_envelope();
    DsnRequest failure = request_for(e, DsnKind::failure);
    failure.recipients[0].status = "5.1.1\r\nAction: delivered";
    failure.recipients[1].status = "";
    DsnRequest delay = request_for(e, DsnKind::delay);
    delay.recipients[0].status = "4.x.1";
    const auto g1 = status_groups(parse_report(build_checked(failure)).parts.at(1).body);
    ASSERT_EQ(g1.size(), 3u);
    EXPECT_EQ(get(g1[1], "Status"), "5.0.0");
    EXPECT_EQ(count(g1[1], "Action"), 1u);
    EXPECT_EQ(get(g1[2], "Status"), "5.0.0");
    const auto g2 = status_groups(parse_report(build_checked(delay)).parts.at(1).body);
    ASSERT_EQ(g2.size(), 2u);
    EXPECT_EQ(get(g2[1], "Status"), "4.0.0");
}

TEST(Dsn, BoundaryAvoidsCollisionsInTheOriginal) {
    const Envelope e = original_envelope();
    const std::string derived = parse_report(build_dsn(request_for(e, DsnKind::failure))).boundary;
    // Original headers that contain the derived boundary, followed by every extension
    // character, and as a delimiter line of their own.
    std::string headers = "Subject: --" + derived + "\r\nX-Trap: " + derived + "--\r\n";
    for (char c : std::string("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
        headers += "X-" + std::string(1, c) + ": " + derived + c + "\r\n";
    headers += "--" + derived + "\r\n";  // not a valid field, but returned as it came
    const std::string content = headers + "\r\nbody\r\n";
    DsnRequest request = request_for(e, DsnKind::failure);
    request.original_content = content;

    const std::string message = build_checked(request);
    const Report report = parse_report(message);
    EXPECT_NE(report.boundary, derived);
    EXPECT_NE(report.boundary.find(derived), std::string::npos) << "extended, not replaced";
    ASSERT_EQ(report.parts.size(), 3u);
    for (const Part& p : report.parts) EXPECT_EQ(p.body.find(report.boundary), std::string::npos);
    EXPECT_EQ(report.parts[2].body, headers);
}

TEST(Dsn, DiagnosticInjectionStaysOnOneField) {
    const Envelope e = original_envelope();
    DsnRequest request = request_for(e, DsnKind::failure);
    const std::string derived = parse_report(build_dsn(request)).boundary;
    request.recipients.resize(1);
    request.recipients[0].diagnostic =
        "550-5.1.1 first line\r\n550 5.1.1 second\r\nStatus: 2.0.0\r\n\r\nFinal-Recipient: rfc822; evil@example\n"
        "Action: delivered\r--" + derived + "--\r\n\0\x1b[2J\x7f\t\xff end";
    request.recipients[0].diagnostic.push_back('\0');
    request.recipients[0].remote_mta = "mx.example\r\nAction: delivered";

    const std::string message = build_checked(request);
    const Report report = parse_report(message);
    ASSERT_EQ(report.parts.size(), 3u);
    // The reply holds the derived boundary: it is extended so no part contains it.
    EXPECT_NE(report.boundary, derived);
    for (const Part& p : report.parts) EXPECT_EQ(p.body.find(report.boundary), std::string::npos);
    const std::vector<Fields> groups = status_groups(report.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    const Fields& group = groups[1];
    EXPECT_EQ(count(group, "Status"), 1u);
    EXPECT_EQ(get(group, "Status"), "5.1.1");
    EXPECT_EQ(count(group, "Action"), 1u);
    EXPECT_EQ(get(group, "Action"), "failed");
    EXPECT_EQ(count(group, "Final-Recipient"), 1u);
    EXPECT_EQ(get(group, "Remote-MTA"), "dns; mx.example Action: delivered");
    const std::string diagnostic = get(group, "Diagnostic-Code").value_or("");
    EXPECT_EQ(diagnostic.rfind("smtp; 550-5.1.1 first line 550 5.1.1 second Status: 2.0.0 Final-Recipient:", 0), 0u)
        << diagnostic;
    for (char c : diagnostic) {
        EXPECT_GE(static_cast<unsigned char>(c), 0x20u);
        EXPECT_LT(static_cast<unsigned char>(c), 0x7fu);
    }
    EXPECT_EQ(message.find("evil@example\r\n"), std::string::npos);
    EXPECT_FALSE(has_8bit(message));
}

TEST(Dsn, LongDiagnosticsAreFoldedNotBroken) {
    const Envelope e = original_envelope();
    DsnRequest request = request_for(e, DsnKind::failure);
    std::string words;
    for (int i = 0; words.size() < 1500; ++i) words += "word" + std::to_string(i) + " ";
    words.pop_back();
    request.recipients[0].diagnostic = "550 5.7.1 " + words;
    request.recipients[1].diagnostic = "550 5.7.1 " + std::string(3000, 'x');  // no whitespace at all

    const std::string message = build_checked(request);
    const Report report = parse_report(message);
    ASSERT_EQ(report.parts.size(), 3u);
    const std::vector<Fields> groups = status_groups(report.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);
    // Folded at whitespace: unfolding gives back the reply exactly.
    EXPECT_EQ(get(groups[1], "Diagnostic-Code"), "smtp; 550 5.7.1 " + words);
    for (const std::string& line : split_lines(report.parts[1].body)) EXPECT_LE(line.size(), 998u);
    // Broken hard (or capped) only where there is no whitespace; the group stays intact.
    const std::string hard = get(groups[2], "Diagnostic-Code").value_or("");
    EXPECT_EQ(hard.rfind("smtp; 550 5.7.1 xxxx", 0), 0u);
    EXPECT_EQ(get(groups[2], "Status"), "5.4.4");
    EXPECT_NE(unfold(report.parts[0].body).find(words), std::string::npos);
}

TEST(Dsn, Utf8AddressesStay7BitOutsideTheReturnedHeaders) {
    Envelope e = original_envelope();
    e.sender = "j\xC3\xB6rg@b\xC3\xBC" "cher.example";
    e.smtputf8 = true;
    const std::string headers = "From: J\xC3\xB6rg <j\xC3\xB6rg@b\xC3\xBC" "cher.example>\r\nSubject: caf\xC3\xA9\r\n";
    const std::string content = headers + "\r\nbody\r\n";
    DsnRequest request = request_for(e, DsnKind::failure);
    request.original_content = content;
    request.recipients.resize(1);
    request.recipients[0].address = "d\xC3\xA9si+r\xC3\xA9@example.com";
    request.recipients[0].diagnostic = "550 5.1.1 unknown d\xC3\xA9si";

    const std::string message = build_checked(request);
    const Report report = parse_report(message);
    ASSERT_EQ(report.parts.size(), 3u);
    EXPECT_FALSE(has_8bit(message.substr(0, message.find(report.parts[2].body))));
    EXPECT_EQ(report.parts[2].body, headers);
    EXPECT_EQ(get(report.parts[2].headers, "Content-Transfer-Encoding"), "8bit");
    EXPECT_EQ(get(report.headers, "Content-Transfer-Encoding"), "8bit");

    // RFC 6533: the 7-bit "utf-8" address type with \x{HEX} escapes ('+' escaped too).
    const std::vector<Fields> groups = status_groups(report.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(get(groups[1], "Final-Recipient"), "utf-8; d\\x{E9}si\\x{2B}r\\x{E9}@example.com");
    EXPECT_EQ(get(groups[1], "Diagnostic-Code"), "smtp; 550 5.1.1 unknown d??si");
    EXPECT_NE(report.parts[0].body.find("d\\x{E9}si\\x{2B}r\\x{E9}@example.com"), std::string::npos);
    // RFC 2047 encoded group name: "jörg@bücher.example" in base64.
    EXPECT_EQ(get(report.headers, "To"), "=?utf-8?B?asO2cmdAYsO8Y2hlci5leGFtcGxl?=:;");
}

TEST(Dsn, LongUtf8SenderIsSplitIntoEncodedWords) {
    Envelope e = original_envelope();
    e.sender = "";
    for (int i = 0; i < 40; ++i) e.sender += "\xC3\xB6";  // 80 octets of two-octet characters
    e.sender += "@example.com";
    const std::string message = build_checked(request_for(e, DsnKind::failure));
    const std::string to = get(parse_report(message).headers, "To").value_or("");
    std::size_t words = 0;
    for (std::size_t p = to.find("=?utf-8?B?"); p != std::string::npos; p = to.find("=?utf-8?B?", p + 1)) {
        const std::size_t end = to.find("?=", p + 10);
        ASSERT_NE(end, std::string::npos);
        EXPECT_LE(end + 2 - p, 75u);  // RFC 2047 2
        ++words;
    }
    EXPECT_GE(words, 2u);
    EXPECT_FALSE(has_8bit(message));
}

TEST(Dsn, OriginalWithoutBlankLineIsReturnedUpToACap) {
    const Envelope e = original_envelope();
    DsnRequest request = request_for(e, DsnKind::failure);
    std::string content;
    for (int i = 0; content.size() < 200'000; ++i) content += "X-Line-" + std::to_string(i) + ": filler\r\n";
    request.original_content = content;
    const Report report = parse_report(build_checked(request));
    ASSERT_EQ(report.parts.size(), 3u);
    const std::string& returned = report.parts[2].body;
    EXPECT_GT(returned.size(), 1000u);
    EXPECT_LE(returned.size(), 64u * 1024u);
    EXPECT_EQ(content.rfind(returned, 0), 0u) << "a prefix of whole lines";
    EXPECT_EQ(returned.substr(returned.size() - 2), "\r\n");

    request.original_content = "Subject: headers only, no body\r\n";
    EXPECT_EQ(parse_report(build_checked(request)).parts.at(2).body, "Subject: headers only, no body\r\n");
    request.original_content = "Subject: no final line end";
    EXPECT_EQ(parse_report(build_checked(request)).parts.at(2).body, "Subject: no final line end\r\n");
    request.original_content = "";
    EXPECT_EQ(parse_report(build_checked(request)).parts.at(2).body, "");
}

TEST(Dsn, OriginalLineEndsAreRepaired) {
    const Envelope e = original_envelope();
    DsnRequest request = request_for(e, DsnKind::failure);
    std::string content = "Subject: lf only\nX-Cr: a\rb\nX-Nul: a";
    content.push_back('\0');
    content += "b\n\nbody\n";
    request.original_content = content;
    const Report report = parse_report(build_checked(request));
    EXPECT_EQ(report.parts.at(2).body, "Subject: lf only\r\nX-Cr: a b\r\nX-Nul: a b\r\n");
}

TEST(Dsn, DefaultsAndHostileHostNames) {
    const Envelope e = original_envelope();
    DsnRequest request = request_for(e, DsnKind::failure);
    request.postmaster = "";
    EXPECT_EQ(get(parse_report(build_checked(request)).headers, "From"), "Mail Delivery System <postmaster@relay.example>");
    request.reporting_mta = "relay.example\r\nBcc: victim@example";
    const std::string message = build_checked(request);
    EXPECT_EQ(message.find("\r\nBcc:"), std::string::npos);
    EXPECT_FALSE(get(parse_report(message).headers, "Bcc"));
}

TEST(Dsn, CallerMistakesAreLoud) {
    Envelope e = original_envelope();
    DsnRequest request = request_for(e, DsnKind::failure);
    request.original = nullptr;
    EXPECT_THROW(build_dsn(request), std::invalid_argument);
    request.original = &e;
    request.recipients.clear();
    EXPECT_THROW(build_dsn(request), std::invalid_argument);
    request = request_for(e, DsnKind::failure);
    e.sender.clear();  // never report to the null sender
    EXPECT_THROW(build_dsn(request), std::invalid_argument);
}

}  // namespace
}  // namespace edgerelay::queue
