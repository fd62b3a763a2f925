// RFC 5321 paths (MAIL FROM / RCPT TO arguments), parsed without I/O.
// The relay decision uses Mailbox::domain only: the part after the final '@' of the
// mailbox, after any source route is dropped (RFC 5321 4.1.1.3 / C). '%' and '!' in a
// local part are never interpreted, so they cannot route mail elsewhere.
#pragma once

#include <string>
#include <string_view>

#include "relay/smtp_reply.h"

namespace edgerelay::relay {

struct Mailbox {
    std::string local;     // as written (quoted-string keeps its quotes)
    std::string domain;    // as written; "[192.0.2.1]" for an address literal
    bool domain_is_literal = false;
    bool non_ascii = false;
    std::string address() const;  // local@domain, or "" for the null path
    bool null() const { return local.empty() && domain.empty(); }
};

struct PathParse {
    bool ok = false;
    Mailbox mailbox;
    Reply error = Reply::syntax;  // bad_sender / bad_recipient / needs_smtputf8 / syntax
    std::string_view rest;        // text after the closing '>' (ESMTP parameters)
};

// text starts at '<' (leading spaces allowed). is_sender: the null path "<>" is valid
// and syntax errors answer bad_sender (5.1.7) instead of bad_recipient (5.1.3).
// smtputf8: non-ASCII UTF-8 is allowed in the local part and domain; without it a
// non-ASCII address answers needs_smtputf8 (553 5.6.7).
// Limits (RFC 5321 4.5.3.1): local part 64, domain 255, path 256 octets.
PathParse parse_path(std::string_view text, bool is_sender, bool smtputf8);

// Lower-cased ASCII copy of a domain, for route lookup.
std::string lowercase_domain(std::string_view domain);

// ASCII case-insensitive equality (domains, SMTP verbs and keywords, header names);
// octets >= 0x80 compare exactly.
bool ascii_iequals(std::string_view a, std::string_view b);

}  // namespace edgerelay::relay
