// One pass over the queue counting what operators and metrics ask about: messages per
// destination domain and state, and the oldest arrival. The admin API's metrics and
// route list, and edgerelayctl's route list, share it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "queue/envelope.h"
#include "queue/spool.h"

namespace edgerelay::queue {

struct QueueCensus {
    // A message counts once in every domain where it has recipients not yet final.
    std::map<std::pair<std::string, std::string>, std::uint64_t> by_domain_state;  // (domain, "ready"...)
    std::map<std::string, std::uint64_t> by_domain;
    std::uint64_t messages = 0;
    UnixMicros oldest_arrival = 0;  // 0 when the queue is empty
};

void count_envelope(QueueCensus& census, const Envelope& envelope);
QueueCensus take_census(const Spool& spool);

}  // namespace edgerelay::queue
