// SMTP command lines, parsed without I/O: the verb, then for MAIL and RCPT the path and
// the ESMTP parameters this server understands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relay/address.h"
#include "relay/smtp_reply.h"

namespace edgerelay::relay {

enum class Verb {
    ehlo, helo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, starttls,
    not_implemented,  // known SMTP verbs this server does not offer: TURN, ETRN, ATRN, AUTH, SEND, SOML, SAML, EXPN handled above
    unknown,
};

struct Command {
    Verb verb = Verb::unknown;
    std::string_view args;  // after the verb and one space; trailing spaces trimmed
};

// line excludes the CRLF. Verbs are case-insensitive.
Command parse_command(std::string_view line);

enum class BodyType { seven_bit, eight_bit_mime };

struct MailFrom {
    Mailbox sender;
    std::optional<std::uint64_t> size;  // SIZE=
    BodyType body = BodyType::seven_bit;
    bool smtputf8 = false;
};

struct RcptTo {
    Mailbox recipient;
};

// Result of parsing MAIL/RCPT arguments: either the value or the reply to give.
template <typename T>
struct Parsed {
    std::optional<T> value;
    Reply error = Reply::syntax;
};

// args: what follows "MAIL " ("FROM:<a@b> SIZE=10"). "FROM:" is case-insensitive and
// RFC 5321 allows no space after the colon, but like Postfix we tolerate one.
// Unknown parameters: unknown_parameter (555 5.5.4); malformed values: syntax (501 5.5.4).
Parsed<MailFrom> parse_mail_from(std::string_view args);
Parsed<RcptTo> parse_rcpt_to(std::string_view args, bool smtputf8);

struct BdatArgs {
    std::uint64_t size = 0;
    bool last = false;
};
std::optional<BdatArgs> parse_bdat(std::string_view args);  // "1234" or "1234 LAST"

}  // namespace edgerelay::relay
