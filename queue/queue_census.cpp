// Counting the queue in one read snapshot.
#include "queue/queue_census.h"

#include "queue/scheduler.h"

namespace edgerelay::queue {

void count_envelope(QueueCensus& census, const Envelope& envelope) {
    ++census.messages;
    if (census.oldest_arrival == 0 || envelope.arrival < census.oldest_arrival) census.oldest_arrival = envelope.arrival;
    const std::string state(to_string(envelope.state));
    for (auto& domain : pending_destinations(envelope)) {
        ++census.by_domain_state[{domain, state}];
        ++census.by_domain[std::move(domain)];
    }
}

QueueCensus take_census(const Spool& spool) {
    QueueCensus census;
    spool.for_each_envelope([&](const Envelope& envelope) {
        count_envelope(census, envelope);
        return true;
    });
    return census;
}

}  // namespace edgerelay::queue
