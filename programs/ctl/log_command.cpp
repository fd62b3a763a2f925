// `edgerelayctl log`: the tracking index's answer for matching messages, oldest event
// first. Reads the spool directly, so support staff can use it with the daemon stopped.
#include <algorithm>
#include <iostream>

#include "programs/ctl/ctl.h"
#include "queue/spool.h"
#include "queue/tracking_index.h"

namespace edgerelay::ctl {

int log_command(const Invocation& inv, const conf::Config& config) {
    if (inv.words.size() != 1) fail("log takes options only");
    inv.allow_options({"message-id", "queue-id", "from", "to", "since", "until", "limit"});
    queue::TrackingQuery query;
    const auto error = queue::tracking_query_from(
        [&](std::string_view name) {
            std::string option(name);
            std::replace(option.begin(), option.end(), '_', '-');
            return inv.option(option);
        },
        queue::now_micros(), query);
    if (!error.empty()) fail("--" + error);
    const queue::Spool spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_only);
    const auto result = queue::TrackingIndex(spool).find(query);
    if (!result.available) fail("spool " + spool.path() + " has no tracking index yet (edgerelayd creates it)", 1);
    std::cout << (inv.json ? queue::tracking_json(result.messages) : queue::tracking_text(result.messages));
    if (result.truncated)
        std::cerr << "edgerelayctl: more messages match; showing the " << query.limit << " most recent (--limit N)\n";
    else if (result.messages.empty() && !inv.json)
        std::cerr << "edgerelayctl: no matching messages\n";
    return 0;
}

}  // namespace edgerelay::ctl
