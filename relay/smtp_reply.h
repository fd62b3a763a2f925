// Every reply the SMTP server gives, with its RFC 5321 code and RFC 3463 enhanced
// status code, from one table (smtp_reply.cpp). Sessions never spell codes inline.
#pragma once

#include <string>
#include <string_view>

namespace edgerelay::relay {

enum class Reply {
    // 2xx / 3xx
    service_ready,       // 220 (banner; text is the host name + " ESMTP edgerelay")
    closing,             // 221 2.0.0 Bye
    ok,                  // 250 2.0.0 Ok
    sender_ok,           // 250 2.1.0 Ok
    recipient_ok,        // 250 2.1.5 Ok
    queued,              // 250 2.0.0 Ok: queued as <ID>
    chunk_ok,            // 250 2.0.0 Ok: <n> octets received
    vrfy_cannot,         // 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
    help,                // 214 2.0.0 ...
    start_data,          // 354 End data with <CR><LF>.<CR><LF>
    start_tls,           // 220 2.0.0 Ready to start TLS
    // 4xx
    too_many_recipients, // 452 4.5.3 Error: too many recipients
    spool_full,          // 452 4.3.1 Insufficient system storage
    spool_error,         // 451 4.3.0 Error: queue file write error
    too_many_errors,     // 421 4.7.0 Error: too many errors
    too_many_connections,// 421 4.7.0 Error: too many connections
    too_many_from_ip,    // 421 4.7.0 Error: too many connections from your address
    timeout,             // 421 4.4.2 Error: timeout exceeded
    shutting_down,       // 421 4.3.2 Service shutting down
    tls_failed,          // 454 4.7.0 TLS not available due to local problem
    // 5xx
    bad_sequence,        // 503 5.5.1 Error: bad sequence of commands
    need_helo,           // 503 5.5.1 Error: send HELO/EHLO first
    need_mail,           // 503 5.5.1 Error: need MAIL command
    need_rcpt,           // 503 5.5.1 Error: need RCPT command
    nested_mail,         // 503 5.5.1 Error: nested MAIL command
    no_valid_recipients, // 554 5.5.1 Error: no valid recipients
    tls_unavailable,     // 503 5.5.1 Error: STARTTLS not offered
    tls_active,          // 503 5.5.1 Error: TLS already active
    unknown_command,     // 500 5.5.2 Error: command not recognized
    not_implemented,     // 502 5.5.1 Error: command not implemented
    line_too_long,       // 500 5.5.2 Error: line too long
    syntax,              // 501 5.5.4 Syntax error in parameters or arguments
    unknown_parameter,   // 555 5.5.4 Unsupported option
    bad_recipient,       // 501 5.1.3 Bad recipient address syntax
    bad_sender,          // 501 5.1.7 Bad sender address syntax
    needs_smtputf8,      // 553 5.6.7 Non-ASCII address requires SMTPUTF8
    bad_data,            // 550 5.5.2 Error: bare <CR> or <LF> in message data
    data_line_too_long,  // 550 5.5.2 Error: message line longer than 1000 octets
    too_big,             // 552 5.3.4 Error: message file too big
    too_many_hops,       // 554 5.4.6 Error: too many hops (mail loop)
    relay_denied,        // 554 5.7.1 Error: relay access denied
};

struct ReplyInfo {
    int code;
    std::string_view enhanced;  // "5.5.1"; empty for 220 banner
    std::string_view text;
};

const ReplyInfo& reply_info(Reply r);
bool is_error(Reply r);  // 4xx or 5xx (counted against max_errors)

// "CODE ENHANCED TEXT[ detail]\r\n". detail is appended after the table text (a queue
// id, an address, a size).
std::string format_reply(Reply r, std::string_view detail = {});

}  // namespace edgerelay::relay
