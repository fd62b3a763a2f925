// Reading a tracking query from named parameters, the same for the CLI and the API.
#include <stdexcept>

#include "queue/tracking_index.h"

namespace edgerelay::queue {

std::string tracking_query_from(const std::function<std::string(std::string_view)>& parameter, UnixMicros now,
                                TrackingQuery& query) {
    query.message_id = parameter("message_id");
    query.queue_id = parameter("queue_id");
    query.sender = parameter("from");
    query.recipient = parameter("to");
    for (auto [name, bound] : {std::pair{"since", &query.since}, std::pair{"until", &query.until}}) {
        if (const std::string text = parameter(name); !text.empty()) {
            *bound = parse_log_time(text, now);
            if (!*bound)
                return std::string(name) + " wants a time like 2026-11-26T02:00:00Z or 30m (ago), not '" + text + "'";
        }
    }
    if (const std::string limit = parameter("limit"); !limit.empty()) {
        try {
            std::size_t used = 0;
            query.limit = std::stoul(limit, &used);
            if (used != limit.size()) throw std::invalid_argument(limit);
        } catch (const std::exception&) {
            return "limit wants a number (0: no limit), not '" + limit + "'";
        }
    }
    return {};
}

}  // namespace edgerelay::queue
