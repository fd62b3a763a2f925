// edgerelayctl: the operator CLI, `edgerelayctl [--config FILE] NOUN VERB ...`. This
// file only picks the command group; each group lives in programs/ctl/.
#include <exception>

#include "programs/ctl/ctl.h"

int main(int argc, char** argv) {
    using namespace edgerelay::ctl;
    const Invocation inv = parse_invocation(argc, argv);
    if (inv.words.empty()) fail("missing command");
    const std::string& noun = inv.words[0];
    const bool takes_verb = noun == "queue" || noun == "route";
    if (takes_verb && inv.words.size() < 2) fail("missing command: " + noun + " what?");
    const auto config = load_config(inv);
    try {
        if (noun == "queue") return queue_command(inv, config);
        if (noun == "route") return route_command(inv, config);
        if (noun == "log") return log_command(inv, config);
        if (noun == "mx") return mx_command(inv, config);
    } catch (const std::exception& e) {
        fail(e.what(), 1);
    }
    fail("unknown command '" + noun + "'");
}
