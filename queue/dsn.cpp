// Builds the delivery status notification (RFC 3464 inside an RFC 6522 multipart/report)
// that carries a bounce or a delay warning back to the envelope sender.
//
// Expects: a request with the original envelope (non-null sender), at least one recipient,
// and the original content as spooled. Reports: one complete message, CRLF line ends, no
// line over 998 octets, 7bit everywhere except possibly the returned header section.
//
// Everything that came from the network is untrusted here: a remote reply may carry CR,
// LF or control characters meant to forge fields, an address may be UTF-8 (SMTPUTF8),
// the original headers may hold anything intake let through. So:
//  - diagnostics and host names are reduced to one line of printable ASCII;
//  - addresses that are not printable ASCII are written in the 7-bit "utf-8" address
//    form of RFC 6533 (\x{HEX} escapes) in the delivery-status and text parts, and as
//    an RFC 2047 encoded group name in To:; raw UTF-8 stays only in the returned
//    headers, which are then declared 8bit (as is the report as a whole, RFC 2045 6.4).
//    A message/global-delivery-status (RFC 6533) would keep UTF-8 throughout; we keep
//    the simpler 7-bit report, which every receiver understands;
//  - long lines are folded at whitespace (RFC 5322 2.1.1: 78 recommended, 998 hard);
//    a run of more than 998 octets without whitespace is broken hard, which inserts a
//    space into that value, the lesser harm than an unsendable message.
#include "queue/dsn.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <stdexcept>

namespace edgerelay::queue {
namespace {

constexpr std::size_t soft_line_limit = 78;     // RFC 5322 2.1.1 SHOULD
constexpr std::size_t hard_line_limit = 998;    // RFC 5322 2.1.1 MUST, without CRLF
constexpr std::size_t max_diagnostic = 2048;    // a remote reply is a line, not a novel
constexpr std::size_t max_returned_headers = 64 * 1024;  // RET=HDRS, even without a blank line

bool is_printable_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// One line of printable ASCII: CR, LF, TAB and other controls become a single space
// (a multi-line reply reads as one line), bytes >= 0x80 become '?', runs of spaces
// collapse, and the result is trimmed and capped.
std::string one_line(std::string_view text, std::size_t cap) {
    std::string out;
    out.reserve(std::min(text.size(), cap));
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        const char mapped = c < 0x20 || c == 0x7f ? ' ' : c >= 0x80 ? '?' : ch;
        if (mapped == ' ' && (out.empty() || out.back() == ' ')) continue;
        if (out.size() >= cap) {
            out += "...";
            break;
        }
        out += mapped;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// Decodes one UTF-8 sequence at s[i]; an invalid one yields U+FFFD and consumes a byte.
char32_t next_code_point(std::string_view s, std::size_t& i) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t len = lead < 0x80 ? 1 : (lead & 0xe0) == 0xc0 ? 2 : (lead & 0xf0) == 0xe0 ? 3 : (lead & 0xf8) == 0xf0 ? 4 : 0;
    char32_t cp = len == 1 ? lead : len == 2 ? lead & 0x1fu : len == 3 ? lead & 0x0fu : lead & 0x07u;
    if (len == 0 || i + len > s.size()) {
        ++i;
        return 0xfffd;
    }
    for (std::size_t k = 1; k < len; ++k) {
        const auto c = static_cast<unsigned char>(s[i + k]);
        if ((c & 0xc0) != 0x80) {
            ++i;
            return 0xfffd;
        }
        cp = (cp << 6) | (c & 0x3fu);
    }
    static constexpr std::array<char32_t, 5> min_for_len{0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        ++i;
        return 0xfffd;
    }
    i += len;
    return cp;
}

// RFC 6533 utf-8-addr-xtext: QCHAR as is, everything else as \x{HEX}.
std::string utf8_addr_xtext(std::string_view address) {
    std::string out;
    for (std::size_t i = 0; i < address.size();) {
        const char32_t cp = next_code_point(address, i);
        if (cp >= 0x21 && cp <= 0x7e && cp != '+' && cp != '=' && cp != '\\') {
            out += static_cast<char>(cp);
        } else {
            char buf[16];
            std::snprintf(buf, sizeof buf, "\\x{%X}", static_cast<unsigned>(cp));
            out += buf;
        }
    }
    return out;
}

// An address as it may appear in a 7-bit part: itself when printable ASCII, else the
// RFC 6533 escaped form. The second member is the DSN address type.
std::pair<std::string, std::string_view> seven_bit_address(std::string_view address) {
    if (is_printable_ascii(address)) return {std::string(address), "rfc822"};
    return {utf8_addr_xtext(address), "utf-8"};
}

std::string base64(std::string_view bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
    }
    return out;
}

// To: for the report. A non-ASCII sender cannot be an addr-spec in a 7-bit header, so it
// becomes the name of an empty group, RFC 2047 encoded: readers still see the address,
// and the envelope, not this field, decides where the report goes.
std::string to_field_value(std::string_view sender) {
    if (is_printable_ascii(sender)) return "<" + std::string(sender) + ">";
    std::string out;
    // Encoded words stay within 75 characters (RFC 2047 2) and never split a character (5).
    constexpr std::size_t chunk = 45;
    for (std::size_t i = 0; i < sender.size();) {
        std::size_t end = std::min(sender.size(), i + chunk);
        while (end > i + 1 && end < sender.size() && (static_cast<unsigned char>(sender[end]) & 0xc0) == 0x80) --end;
        if (!out.empty()) out += ' ';
        out += "=?utf-8?B?" + base64(sender.substr(i, end - i)) + "?=";
        i = end;
    }
    return out + ":;";
}

// Appends one logical line with CRLF, folded so no physical line exceeds the hard limit:
// at the last whitespace within `soft` if there is one, else at the first whitespace
// within the hard limit, else hard. Folding happens before the whitespace, so unfolding
// (RFC 5322 2.2.3) restores the line; leading indentation and trailing whitespace are
// never fold points, so no physical line is whitespace only.
void append_line(std::string& out, std::string_view text, std::size_t soft = soft_line_limit) {
    std::string line(text);
    while (line.size() > soft) {
        const std::size_t body = line.find_first_not_of(" \t");
        const std::size_t last = line.find_last_not_of(" \t");
        if (body == std::string::npos) break;
        const auto foldable = [&](std::size_t k) { return k > body && k <= last && (line[k] == ' ' || line[k] == '\t'); };
        std::size_t at = std::string::npos;
        for (std::size_t k = std::min(soft, last); k > body && at == std::string::npos; --k)
            if (foldable(k)) at = k;
        if (at == std::string::npos && line.size() > hard_line_limit) {
            for (std::size_t k = soft + 1; k <= std::min(hard_line_limit, last) && at == std::string::npos; ++k)
                if (foldable(k)) at = k;
            if (at == std::string::npos) {
                out.append(line, 0, hard_line_limit);
                out += "\r\n";
                line = " " + line.substr(hard_line_limit);  // a space the value did not have
                continue;
            }
        }
        if (at == std::string::npos) break;
        out.append(line, 0, at);
        out += "\r\n";
        line.erase(0, at);
    }
    out += line;
    out += "\r\n";
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    std::string line;
    line.reserve(name.size() + 2 + value.size());
    line += name;
    line += ": ";
    line += value;
    append_line(out, line);
}

// Status must be class.subject.detail (RFC 3463); anything else gets the generic code.
std::string status_code(std::string_view status, DsnKind kind) {
    const std::string fallback = kind == DsnKind::failure ? "5.0.0" : "4.0.0";
    if (status.size() < 5 || (status[0] != '2' && status[0] != '4' && status[0] != '5') || status[1] != '.')
        return fallback;
    std::size_t i = 2, dots = 0, digits = 0;
    for (; i < status.size(); ++i) {
        if (status[i] == '.') {
            if (digits == 0 || ++dots > 1) return fallback;
            digits = 0;
        } else if (status[i] >= '0' && status[i] <= '9') {
            if (++digits > 3) return fallback;
        } else {
            return fallback;
        }
    }
    return dots == 1 && digits > 0 ? std::string(status) : fallback;
}

// The original header section (RFC 3462 text/rfc822-headers, i.e. RET=HDRS): lines up to
// the first empty one, or the whole content up to the cap. Line ends become CRLF; NUL and
// stray CR become spaces. Sets eight_bit when a byte >= 0x80 is returned.
std::string returned_headers(std::string_view content, bool& eight_bit) {
    std::string out;
    eight_bit = false;
    while (!content.empty()) {
        std::size_t eol = content.find('\n');
        std::string_view line = content.substr(0, eol);
        content.remove_prefix(eol == std::string_view::npos ? content.size() : eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;
        std::string clean(line);
        for (char& c : clean) {
            if (c == '\0' || c == '\r') c = ' ';
            if (static_cast<unsigned char>(c) >= 0x80) eight_bit = true;
        }
        if (out.size() + clean.size() + 2 > max_returned_headers) break;
        append_line(out, clean, hard_line_limit);  // returned as sent; folded only if unsendable
    }
    return out;
}

// A multipart boundary that occurs in none of the parts. Start from the queue id; while
// the candidate occurs, append a character that follows none of its occurrences (or the
// rarest one), so each step at least shrinks the set of matches and ends quickly.
std::string choose_boundary(std::string_view queue_id, const std::array<std::string_view, 3>& parts) {
    static constexpr std::string_view extra =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string boundary = "=_edgerelay_";  // "=_" cannot occur in base64 or quoted-printable text
    for (const char c : queue_id.substr(0, 32))
        boundary += (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? c : '_';
    for (;;) {
        std::array<std::size_t, extra.size()> followers{};
        bool found = false;
        for (const std::string_view part : parts)
            for (std::size_t at = part.find(boundary); at != std::string_view::npos; at = part.find(boundary, at + 1)) {
                found = true;
                const std::size_t next = at + boundary.size();
                if (next < part.size())
                    if (const std::size_t k = extra.find(part[next]); k != std::string_view::npos) ++followers[k];
            }
        if (!found) return boundary;
        const auto rarest = std::min_element(followers.begin(), followers.end());
        boundary += extra[static_cast<std::size_t>(rarest - followers.begin())];
    }
}

const Recipient* envelope_recipient(const Envelope& e, std::string_view address) {
    for (const Recipient& r : e.recipients)
        if (r.address == address) return &r;
    return nullptr;
}

std::string human_part(const DsnRequest& request) {
    const std::string host = one_line(request.reporting_mta, 255);
    std::string out;
    append_line(out, "This is the mail system at host " + host + ".");
    append_line(out, "");
    if (request.kind == DsnKind::failure) {
        append_line(out, "I'm sorry to have to inform you that your message could not be delivered to one or "
                         "more recipients.");
        append_line(out, "");
        append_line(out, "Delivery to the following recipients failed permanently:");
    } else {
        append_line(out, "This is a warning only; you do not need to resend your message.");
        append_line(out, "");
        append_line(out, "Your message could not yet be delivered to the following recipients. Delivery "
                         "will be retried; until when is not known yet. If it still fails, you will "
                         "receive another notice.");
    }
    append_line(out, "");
    for (const DsnRecipient& r : request.recipients) {
        append_line(out, "  " + seven_bit_address(r.address).first);
        const std::string why = one_line(r.diagnostic, max_diagnostic);
        append_line(out, "    " + (why.empty() ? "(no reason given)" : why));
        append_line(out, "");
    }
    append_line(out, "The headers of your message are attached below.");
    return out;
}

std::string status_part(const DsnRequest& request) {
    const Envelope& original = *request.original;
    std::string out;
    append_field(out, "Reporting-MTA", "dns; " + one_line(request.reporting_mta, 255));
    append_field(out, "Arrival-Date", format_rfc5322(original.arrival));
    for (const DsnRecipient& r : request.recipients) {
        append_line(out, "");
        const auto [address, type] = seven_bit_address(r.address);
        append_field(out, "Final-Recipient", std::string(type) + "; " + address);
        append_field(out, "Action", request.kind == DsnKind::failure ? "failed" : "delayed");
        append_field(out, "Status", status_code(r.status, request.kind));
        if (const std::string mta = one_line(r.remote_mta, 255); !mta.empty()) append_field(out, "Remote-MTA", "dns; " + mta);
        if (const std::string why = one_line(r.diagnostic, max_diagnostic); !why.empty())
            append_field(out, "Diagnostic-Code", "smtp; " + why);
        if (const Recipient* e = envelope_recipient(original, r.address); e && e->last_attempt != 0)
            append_field(out, "Last-Attempt-Date", format_rfc5322(e->last_attempt));
    }
    return out;
}

}  // namespace

std::string build_dsn(const DsnRequest& request) {
    // Callers decide whether a report is due; these are their mistakes, not the network's.
    if (request.original == nullptr) throw std::invalid_argument("build_dsn: no original envelope");
    if (request.original->sender.empty()) throw std::invalid_argument("build_dsn: report to the null sender");
    if (request.recipients.empty()) throw std::invalid_argument("build_dsn: no recipients to report");

    const std::string human = human_part(request);
    const std::string status = status_part(request);
    bool eight_bit = false;
    const std::string headers = returned_headers(request.original_content, eight_bit);
    const std::string boundary = choose_boundary(request.original->queue_id, {human, status, headers});

    const std::string host = one_line(request.reporting_mta, 255);
    const std::string postmaster = request.postmaster.empty() ? "postmaster@" + host : one_line(request.postmaster, 255);
    std::string out;
    out.reserve(human.size() + status.size() + headers.size() + 1024);
    append_field(out, "From", "Mail Delivery System <" + postmaster + ">");
    append_field(out, "To", to_field_value(request.original->sender));
    append_field(out, "Subject", request.kind == DsnKind::failure ? "Undelivered Mail Returned to Sender"
                                                                  : "Delayed Mail (still being retried)");
    append_field(out, "Date", format_rfc5322(request.now));
    append_field(out, "Message-ID", "<" + one_line(request.message_id, 255) + ">");
    append_field(out, "Auto-Submitted", "auto-replied");  // RFC 3834 5
    append_field(out, "MIME-Version", "1.0");
    append_field(out, "Content-Type", "multipart/report; report-type=delivery-status; boundary=\"" + boundary + "\"");
    if (eight_bit) append_field(out, "Content-Transfer-Encoding", "8bit");
    append_line(out, "");
    append_line(out, "This is a MIME-encapsulated message.");

    const auto part = [&](std::string_view description, std::string_view type, bool part_eight_bit,
                          std::string_view body) {
        append_line(out, "");
        append_line(out, "--" + boundary);
        append_field(out, "Content-Description", description);
        append_field(out, "Content-Type", type);
        append_field(out, "Content-Transfer-Encoding", part_eight_bit ? "8bit" : "7bit");
        append_line(out, "");
        out += body;
    };
    part("Notification", "text/plain; charset=us-ascii", false, human);
    part("Delivery report", "message/delivery-status", false, status);
    part("Undelivered Message Headers", "text/rfc822-headers", eight_bit, headers);
    append_line(out, "");
    append_line(out, "--" + boundary + "--");
    return out;
}

}  // namespace edgerelay::queue
