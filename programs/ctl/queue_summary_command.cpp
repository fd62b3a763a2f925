// `edgerelayctl queue summary [--json]`: the queue by destination domain and age, like
// Postfix's qshape, from one read-only snapshot of the spool (the daemon may run).
#include <iostream>

#include "programs/ctl/ctl.h"
#include "queue/queue_summary.h"
#include "queue/spool.h"

namespace edgerelay::ctl {

int queue_summary_command(const Invocation& inv, const conf::Config& config) {
    if (inv.words.size() != 2) fail("queue summary takes no arguments");
    inv.allow_options({});
    if (inv.all) fail("queue summary has no option --all");
    const queue::Spool spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_only);
    const auto summary = queue::summarize_queue(spool, queue::now_micros());
    if (inv.json) print_json(queue::queue_summary_json(summary));
    else std::cout << queue::queue_summary_text(summary);
    return 0;
}

}  // namespace edgerelay::ctl
