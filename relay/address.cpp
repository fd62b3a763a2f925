// RFC 5321 4.1.2 paths, "<" [source-route ":"] mailbox ">", with the RFC 6531 (SMTPUTF8)
// extension of atext, qtext and sub-domains to UTF-8. A left-to-right cursor: the domain
// is whatever follows the '@' that ends the local part, and since neither a dot-atom nor
// a domain may contain '@', that is the final '@' outside quotes.
#include "relay/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstring>

namespace edgerelay::relay {
namespace {

// RFC 5321 4.5.3.1.1-3.
constexpr std::size_t kMaxLocalPart = 64;
constexpr std::size_t kMaxDomain = 255;
constexpr std::size_t kMaxPath = 256;  // "<" ... ">" inclusive
constexpr std::size_t kMaxLabel = 63;  // RFC 1035 2.3.4

enum class Fault { none, syntax, needs_smtputf8 };

bool is_alnum(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

// RFC 5322 3.2.3 atext (ASCII part).
bool is_atext(unsigned char ch) {
    return is_alnum(ch) || (ch != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", ch) != nullptr);
}

struct Cursor {
    std::string_view text;
    std::size_t pos = 0;
    bool smtputf8 = false;
    bool non_ascii = false;
    Fault fault = Fault::none;

    bool at_end() const { return pos >= text.size(); }
    unsigned char peek() const { return at_end() ? 0 : static_cast<unsigned char>(text[pos]); }
    unsigned octet(std::size_t ahead) const {
        return pos + ahead < text.size() ? static_cast<unsigned char>(text[pos + ahead]) : 0u;
    }
    bool take(char ch) {
        if (at_end() || text[pos] != ch) return false;
        ++pos;
        return true;
    }
    bool fail(Fault f = Fault::syntax) {
        if (fault == Fault::none) fault = f;
        return false;
    }

    // One UTF8-non-ascii character (RFC 6531 3.3, well-formed per RFC 3629 4: no
    // overlongs, no surrogates, nothing above U+10FFFF). C1 controls are refused like
    // C0 controls.
    bool take_utf8() {
        if (!smtputf8) return fail(Fault::needs_smtputf8);
        const unsigned lead = octet(0);
        std::size_t len = 0;
        unsigned lo = 0x80, hi = 0xBF;  // range of the second octet
        if (lead >= 0xC2 && lead <= 0xDF) {
            len = 2;
            if (lead == 0xC2) lo = 0xA0;  // U+0080..U+009F are C1 controls
        } else if (lead == 0xE0) {
            len = 3, lo = 0xA0;
        } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
            len = 3;
        } else if (lead == 0xED) {
            len = 3, hi = 0x9F;
        } else if (lead == 0xF0) {
            len = 4, lo = 0x90;
        } else if (lead >= 0xF1 && lead <= 0xF3) {
            len = 4;
        } else if (lead == 0xF4) {
            len = 4, hi = 0x8F;
        } else {
            return fail();
        }
        if (octet(1) < lo || octet(1) > hi) return fail();
        for (std::size_t k = 2; k < len; ++k)
            if (octet(k) < 0x80 || octet(k) > 0xBF) return fail();
        pos += len;
        non_ascii = true;
        return true;
    }

    // A run of ASCII octets that allowed() accepts and UTF-8 characters; false on a fault.
    template <typename Allowed>
    bool take_run(Allowed allowed) {
        while (!at_end()) {
            const unsigned char ch = peek();
            if (ch >= 0x80) {
                if (!take_utf8()) return false;
            } else if (allowed(ch)) {
                ++pos;
            } else {
                break;
            }
        }
        return true;
    }
};

// Dot-string = Atom *("." Atom): no empty atom, hence no leading, trailing or double dot.
bool parse_dot_atom(Cursor& c) {
    for (;;) {
        const std::size_t start = c.pos;
        if (!c.take_run(is_atext)) return false;
        if (c.pos == start) return c.fail();
        if (!c.take('.')) return true;
    }
}

// Quoted-string = DQUOTE *QcontentSMTP DQUOTE; quoted-pairSMTP = "\" %d32-126.
bool parse_quoted_string(Cursor& c) {
    ++c.pos;  // the opening quote
    for (;;) {
        if (c.at_end()) return c.fail();
        const unsigned char ch = c.peek();
        if (ch == '"') {
            ++c.pos;
            return true;
        }
        if (ch == '\\') {
            const unsigned quoted = c.octet(1);
            if (quoted < 32 || quoted > 126) return c.fail();
            c.pos += 2;
        } else if (ch >= 0x80) {
            if (!c.take_utf8()) return false;
        } else if (ch < 32 || ch == 127) {
            return c.fail();
        } else {
            ++c.pos;
        }
    }
}

// address-literal: "[" IPv4-address-literal / "IPv6:" IPv6-addr "]". General address
// literals (other tags) name nothing we can deliver to, so they are refused.
bool parse_address_literal(Cursor& c) {
    const std::size_t open = c.pos;
    const std::size_t close = c.text.find(']', open);
    if (close == std::string_view::npos) return c.fail();
    std::string_view inside = c.text.substr(open + 1, close - open - 1);
    int family = AF_INET;
    constexpr std::string_view kIpv6Tag = "IPv6:";
    if (inside.size() >= kIpv6Tag.size() && ascii_iequals(inside.substr(0, kIpv6Tag.size()), kIpv6Tag)) {
        family = AF_INET6;
        inside.remove_prefix(kIpv6Tag.size());
    }
    char buf[INET6_ADDRSTRLEN + 1];
    if (inside.empty() || inside.size() >= sizeof buf) return c.fail();
    std::memcpy(buf, inside.data(), inside.size());
    buf[inside.size()] = '\0';
    unsigned char addr[sizeof(in6_addr)];
    if (inet_pton(family, buf, addr) != 1) return c.fail();
    c.pos = close + 1;
    return true;
}

// Domain = sub-domain *("." sub-domain), each an LDH label of 1-63 octets that neither
// starts nor ends with '-' (U-labels allowed under SMTPUTF8).
bool parse_domain_name(Cursor& c) {
    for (;;) {
        const std::size_t start = c.pos;
        if (!c.take_run([](unsigned char ch) { return is_alnum(ch) || ch == '-'; })) return false;
        const std::size_t len = c.pos - start;
        if (len == 0 || len > kMaxLabel) return c.fail();
        if (c.text[start] == '-' || c.text[c.pos - 1] == '-') return c.fail();
        if (!c.take('.')) return true;
    }
}

// A-d-l = At-domain *("," At-domain) ":" (RFC 5321 4.1.2). Accepted and dropped, as
// 4.1.1.3 and appendix C require; it never decides where the mail goes.
bool skip_source_route(Cursor& c) {
    do {
        if (!c.take('@')) return c.fail();
        if (!parse_domain_name(c)) return false;
    } while (c.take(','));
    if (!c.take(':')) return c.fail();
    c.non_ascii = false;  // the route is gone; only the mailbox counts
    return true;
}

}  // namespace

std::string Mailbox::address() const {
    if (null()) return {};
    std::string out;
    out.reserve(local.size() + 1 + domain.size());
    out += local;
    out += '@';
    out += domain;
    return out;
}

PathParse parse_path(std::string_view text, bool is_sender, bool smtputf8) {
    PathParse result;
    const Reply bad = is_sender ? Reply::bad_sender : Reply::bad_recipient;
    result.error = bad;

    std::size_t open = text.find_first_not_of(' ');
    if (open == std::string_view::npos) return result;
    Cursor c{text, open, smtputf8};
    if (!c.take('<')) return result;

    if (c.take('>')) {  // the null reverse-path, RFC 5321 4.5.5
        if (!is_sender) return result;
        result.ok = true;
        result.rest = text.substr(c.pos);
        return result;
    }

    if (c.peek() == '@' && !skip_source_route(c)) {
        result.error = c.fault == Fault::needs_smtputf8 ? Reply::needs_smtputf8 : bad;
        return result;
    }

    const std::size_t local_start = c.pos;
    bool ok = c.peek() == '"' ? parse_quoted_string(c) : parse_dot_atom(c);
    const std::size_t local_end = c.pos;
    ok = ok && (c.take('@') || c.fail());
    const std::size_t domain_start = c.pos;
    bool literal = false;
    if (ok) {
        literal = c.peek() == '[';
        ok = literal ? parse_address_literal(c) : parse_domain_name(c);
    }
    const std::size_t domain_end = c.pos;
    ok = ok && (c.take('>') || c.fail());
    if (!ok) {
        result.error = c.fault == Fault::needs_smtputf8 ? Reply::needs_smtputf8 : bad;
        return result;
    }
    if (local_end - local_start > kMaxLocalPart || domain_end - domain_start > kMaxDomain ||
        c.pos - open > kMaxPath)
        return result;

    result.ok = true;
    result.mailbox.local.assign(text.substr(local_start, local_end - local_start));
    result.mailbox.domain.assign(text.substr(domain_start, domain_end - domain_start));
    result.mailbox.domain_is_literal = literal;
    result.mailbox.non_ascii = c.non_ascii;
    result.rest = text.substr(c.pos);
    return result;
}

std::string lowercase_domain(std::string_view domain) {
    std::string out(domain);
    for (char& ch : out)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return out;
}

bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        unsigned char x = static_cast<unsigned char>(a[i]);
        unsigned char y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

}  // namespace edgerelay::relay
