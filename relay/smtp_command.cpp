// SMTP command lines: the verb (RFC 5321 4.1.1), MAIL/RCPT arguments with the ESMTP
// parameters this server offers (SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531), and
// the BDAT chunk size (RFC 3030). Everything here answers with a Reply, never throws.
#include "relay/smtp_command.h"

#include <array>
#include <charconv>
#include <cstddef>
#include <utility>

namespace edgerelay::relay {
namespace {

constexpr std::array<std::pair<std::string_view, Verb>, 20> kVerbs{{
    {"EHLO", Verb::ehlo},     {"HELO", Verb::helo},
    {"MAIL", Verb::mail},     {"RCPT", Verb::rcpt},
    {"DATA", Verb::data},     {"BDAT", Verb::bdat},
    {"RSET", Verb::rset},     {"NOOP", Verb::noop},
    {"QUIT", Verb::quit},     {"VRFY", Verb::vrfy},
    {"EXPN", Verb::expn},     {"HELP", Verb::help},
    {"STARTTLS", Verb::starttls},
    // Known verbs this server does not offer: 502, not 500 (RFC 5321 4.2.4).
    {"TURN", Verb::not_implemented}, {"ETRN", Verb::not_implemented},
    {"ATRN", Verb::not_implemented}, {"AUTH", Verb::not_implemented},
    {"SEND", Verb::not_implemented}, {"SOML", Verb::not_implemented},
    {"SAML", Verb::not_implemented},
}};

bool is_space(char ch) { return ch == ' ' || ch == '\t'; }

std::string_view trim_leading_spaces(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    return s;
}

// A run of decimal digits, nothing else, that fits in 64 bits.
std::optional<std::uint64_t> parse_decimal(std::string_view digits) {
    if (digits.empty()) return std::nullopt;
    for (char ch : digits)
        if (ch < '0' || ch > '9') return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return value;
}

// "FROM:" / "TO:" (case-insensitive), then optional spaces, which RFC 5321 does not
// allow but many clients send. Leading spaces are tolerated for the same reason.
std::optional<std::string_view> strip_keyword(std::string_view args, std::string_view keyword) {
    args = trim_leading_spaces(args);
    if (args.size() < keyword.size() || !ascii_iequals(args.substr(0, keyword.size()), keyword))
        return std::nullopt;
    return trim_leading_spaces(args.substr(keyword.size()));
}

// esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 4.1.2).
struct Param {
    std::string_view keyword;
    std::optional<std::string_view> value;
};

bool well_formed(const Param& p) {
    if (p.keyword.empty()) return false;
    for (std::size_t i = 0; i < p.keyword.size(); ++i) {
        const char ch = p.keyword[i];
        const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(i > 0 && ch == '-')) return false;
    }
    if (!p.value) return true;
    if (p.value->empty()) return false;
    for (char ch : *p.value) {
        const auto u = static_cast<unsigned char>(ch);
        if (u < 33 || u > 126 || u == '=') return false;  // esmtp-value: %d33-60 / %d62-126
    }
    return true;
}

// Calls on_param for each parameter in what follows the path; stops at the first
// error, which is what the whole command answers.
template <typename OnParam>
Reply for_each_param(std::string_view rest, OnParam on_param) {
    if (!rest.empty() && rest.front() != ' ') return Reply::syntax;  // "<a@b>SIZE=1"
    for (;;) {
        rest = trim_leading_spaces(rest);
        if (rest.empty()) return Reply::ok;
        const std::size_t space = rest.find(' ');
        const std::string_view token = rest.substr(0, space);
        rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space);
        Param p;
        const std::size_t eq = token.find('=');
        p.keyword = token.substr(0, eq);
        if (eq != std::string_view::npos) p.value = token.substr(eq + 1);
        if (!well_formed(p)) return Reply::syntax;
        const Reply r = on_param(p);
        if (r != Reply::ok) return r;
    }
}

// Where the path ends, without judging it: the first '>' outside a quoted string.
// parse_path stops at the same '>', since nothing else in its grammar may hold one.
std::size_t path_end(std::string_view text) {
    bool quoted = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (quoted && ch == '\\') {
            ++i;
        } else if (ch == '"') {
            quoted = !quoted;
        } else if (ch == '>' && !quoted) {
            return i + 1;
        }
    }
    return std::string_view::npos;
}

}  // namespace

Command parse_command(std::string_view line) {
    Command cmd;
    const std::size_t space = line.find(' ');
    const std::string_view verb = line.substr(0, space);
    for (const auto& [name, v] : kVerbs) {
        if (ascii_iequals(verb, name)) {
            cmd.verb = v;
            break;
        }
    }
    if (space != std::string_view::npos) {
        std::string_view args = line.substr(space + 1);
        while (!args.empty() && is_space(args.back())) args.remove_suffix(1);
        cmd.args = args;
    }
    return cmd;
}

Parsed<MailFrom> parse_mail_from(std::string_view args) {
    Parsed<MailFrom> out;
    const auto text = strip_keyword(args, "FROM:");
    if (!text) return out;  // syntax

    // The parameters come first: SMTPUTF8 decides whether a non-ASCII path is allowed.
    MailFrom mail;
    const std::size_t end = path_end(*text);
    if (end != std::string_view::npos) {
        bool seen_size = false, seen_body = false;
        const Reply r = for_each_param(text->substr(end), [&](const Param& p) {
            if (ascii_iequals(p.keyword, "SIZE")) {
                const auto size = p.value ? parse_decimal(*p.value) : std::nullopt;
                if (!size || seen_size) return Reply::syntax;
                seen_size = true;
                mail.size = *size;
            } else if (ascii_iequals(p.keyword, "BODY")) {
                if (!p.value || seen_body) return Reply::syntax;
                seen_body = true;
                if (ascii_iequals(*p.value, "7BIT"))
                    mail.body = BodyType::seven_bit;
                else if (ascii_iequals(*p.value, "8BITMIME"))
                    mail.body = BodyType::eight_bit_mime;
                else
                    return Reply::syntax;  // BINARYMIME is not offered
            } else if (ascii_iequals(p.keyword, "SMTPUTF8")) {
                if (p.value) return Reply::syntax;
                mail.smtputf8 = true;
            } else {
                return Reply::unknown_parameter;
            }
            return Reply::ok;
        });
        if (r != Reply::ok) {
            out.error = r;
            return out;
        }
    }

    PathParse path = parse_path(text->substr(0, end), /*is_sender=*/true, mail.smtputf8);
    if (!path.ok) {
        out.error = path.error;
        return out;
    }
    if (!path.rest.empty()) return out;  // cannot happen: path_end and parse_path agree
    mail.sender = std::move(path.mailbox);
    out.value = std::move(mail);
    return out;
}

Parsed<RcptTo> parse_rcpt_to(std::string_view args, bool smtputf8) {
    Parsed<RcptTo> out;
    const auto text = strip_keyword(args, "TO:");
    if (!text) return out;  // syntax

    PathParse path = parse_path(*text, /*is_sender=*/false, smtputf8);
    if (!path.ok) {
        out.error = path.error;
        return out;
    }
    // No RCPT parameters are offered (no DSN): any well-formed one is unsupported.
    const Reply r = for_each_param(path.rest, [](const Param&) { return Reply::unknown_parameter; });
    if (r != Reply::ok) {
        out.error = r;
        return out;
    }
    out.value = RcptTo{std::move(path.mailbox)};
    return out;
}

// bdat-cmd = "BDAT" SP chunk-size [SP end-marker] (RFC 3030 2).
std::optional<BdatArgs> parse_bdat(std::string_view args) {
    const std::size_t space = args.find(' ');
    const auto size = parse_decimal(args.substr(0, space));
    if (!size) return std::nullopt;
    BdatArgs bdat{*size, false};
    if (space != std::string_view::npos) {
        if (!ascii_iequals(args.substr(space + 1), "LAST")) return std::nullopt;
        bdat.last = true;
    }
    return bdat;
}

}  // namespace edgerelay::relay
