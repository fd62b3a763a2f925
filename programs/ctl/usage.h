// edgerelayctl's usage text: every command and option, in SPEC §2's order.
#pragma once

namespace edgerelay::ctl {

inline constexpr const char* kUsage =
    "usage: edgerelayctl [--config FILE] NOUN VERB [ARGS] [--json]\n"
    "  queue list [--domain D] [--state ready|deferred|held] [--json]\n"
    "  queue show ID [--json]\n"
    "  queue summary [--json]                 counts by destination domain x age (like qshape)\n"
    "  queue flush [ID... | --domain D | --all]\n"
    "  queue hold|release|delete|bounce [ID... | --domain D]\n"
    "  log [--message-id M] [--queue-id Q] [--from A] [--to A] [--since T] [--until T]\n"
    "      [--limit N] [--json]   T: RFC 3339 (2026-11-26T02:00:00Z) or a time ago (30m, 1h, 2d);\n"
    "      filters combine; without any, the most recent N (100) messages\n"
    "  route list [--json]\n"
    "  route explain ADDRESS [--json]\n"
    "  route hold|release DOMAIN\n"
    "  route set DOMAIN NEXT_HOP | route reset DOMAIN\n"
    "  route soft-bounce DOMAIN on|off\n"
    "  mx DOMAIN... [--json]                  do its MX records point at this relay?\n"
    "Read-only commands (list, show, summary, log, explain, mx) work with the daemon stopped;\n"
    "the others go through edgerelayd's admin API ([admin] listen, token).\n";

}  // namespace edgerelay::ctl
