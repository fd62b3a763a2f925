// The reply table: one row per Reply, in the enum's order.
#include "relay/smtp_reply.h"

#include <array>
#include <cstddef>

namespace edgerelay::relay {
namespace {

struct Row {
    Reply reply;
    ReplyInfo info;
};

// Texts follow Postfix's where one exists, so operators recognise them.
constexpr std::array kReplies{
    Row{Reply::service_ready, {220, "", "ESMTP edgerelay"}},
    Row{Reply::closing, {221, "2.0.0", "Bye"}},
    Row{Reply::ok, {250, "2.0.0", "Ok"}},
    Row{Reply::sender_ok, {250, "2.1.0", "Ok"}},
    Row{Reply::recipient_ok, {250, "2.1.5", "Ok"}},
    Row{Reply::queued, {250, "2.0.0", "Ok: queued as"}},
    Row{Reply::chunk_ok, {250, "2.0.0", "Ok: octets received:"}},
    Row{Reply::vrfy_cannot, {252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"}},
    Row{Reply::help, {214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS"}},
    Row{Reply::start_data, {354, "", "End data with <CR><LF>.<CR><LF>"}},
    Row{Reply::start_tls, {220, "2.0.0", "Ready to start TLS"}},
    Row{Reply::too_many_recipients, {452, "4.5.3", "Error: too many recipients"}},
    Row{Reply::spool_full, {452, "4.3.1", "Insufficient system storage"}},
    Row{Reply::spool_error, {451, "4.3.0", "Error: queue file write error"}},
    Row{Reply::too_many_errors, {421, "4.7.0", "Error: too many errors"}},
    Row{Reply::too_many_connections, {421, "4.7.0", "Error: too many connections"}},
    Row{Reply::too_many_from_ip, {421, "4.7.0", "Error: too many connections from your address"}},
    Row{Reply::timeout, {421, "4.4.2", "Error: timeout exceeded"}},
    Row{Reply::shutting_down, {421, "4.3.2", "Service shutting down, closing transmission channel"}},
    Row{Reply::tls_failed, {454, "4.7.0", "TLS not available due to local problem"}},
    Row{Reply::bad_sequence, {503, "5.5.1", "Error: bad sequence of commands"}},
    Row{Reply::need_helo, {503, "5.5.1", "Error: send HELO/EHLO first"}},
    Row{Reply::need_mail, {503, "5.5.1", "Error: need MAIL command"}},
    Row{Reply::need_rcpt, {503, "5.5.1", "Error: need RCPT command"}},
    Row{Reply::nested_mail, {503, "5.5.1", "Error: nested MAIL command"}},
    Row{Reply::no_valid_recipients, {554, "5.5.1", "Error: no valid recipients"}},
    Row{Reply::tls_unavailable, {503, "5.5.1", "Error: STARTTLS not offered"}},
    Row{Reply::tls_active, {503, "5.5.1", "Error: TLS already active"}},
    Row{Reply::unknown_command, {500, "5.5.2", "Error: command not recognized"}},
    Row{Reply::not_implemented, {502, "5.5.1", "Error: command not implemented"}},
    Row{Reply::line_too_long, {500, "5.5.2", "Error: command line too long"}},
    Row{Reply::syntax, {501, "5.5.4", "Syntax error in parameters or arguments"}},
    Row{Reply::unknown_parameter, {555, "5.5.4", "Unsupported option"}},
    Row{Reply::bad_recipient, {501, "5.1.3", "Bad recipient address syntax"}},
    Row{Reply::bad_sender, {501, "5.1.7", "Bad sender address syntax"}},
    Row{Reply::needs_smtputf8, {553, "5.6.7", "Non-ASCII address requires SMTPUTF8"}},
    Row{Reply::bad_data, {550, "5.5.2", "Error: bare <CR> or <LF> in message data"}},
    Row{Reply::data_line_too_long, {550, "5.5.2", "Error: message line longer than 1000 octets"}},
    Row{Reply::too_big, {552, "5.3.4", "Error: message file too big"}},
    Row{Reply::too_many_hops, {554, "5.4.6", "Error: too many hops (mail loop)"}},
    Row{Reply::relay_denied, {554, "5.7.1", "Error: relay access denied"}},
};

constexpr bool table_in_enum_order() {
    for (std::size_t i = 0; i < kReplies.size(); ++i)
        if (static_cast<std::size_t>(kReplies[i].reply) != i) return false;
    return true;
}
static_assert(table_in_enum_order(), "kReplies rows must follow the Reply enum's order");
static_assert(kReplies.size() == static_cast<std::size_t>(Reply::relay_denied) + 1);

}  // namespace

const ReplyInfo& reply_info(Reply r) { return kReplies[static_cast<std::size_t>(r)].info; }

bool is_error(Reply r) { return reply_info(r).code >= 400; }

std::string format_reply(Reply r, std::string_view detail) {
    const ReplyInfo& info = reply_info(r);
    std::string line = std::to_string(info.code);
    line += ' ';
    if (!info.enhanced.empty()) {
        line += info.enhanced;
        line += ' ';
    }
    line += info.text;
    if (!detail.empty()) {
        line += ' ';
        line += detail;
    }
    line += "\r\n";
    return line;
}

}  // namespace edgerelay::relay
