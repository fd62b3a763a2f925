// What is due when (kept apart from how it is stored): every queued message that waits
// for a retry, by due time and by destination, in memory. Rebuilt from the spool at
// start; the spool stays the truth.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "queue/envelope.h"

namespace edgerelay::queue {

class Scheduler {
public:
    // Schedules (or reschedules) a message; destinations are the lower-case recipient
    // domains that still have recipients to deliver.
    void schedule(const std::string& queue_id, UnixMicros due, std::vector<std::string> destinations);
    void remove(const std::string& queue_id);

    // Messages whose time has come, earliest first, removed from the schedule.
    std::vector<std::string> pop_due(UnixMicros now, std::size_t limit);
    // Every message waiting on this destination, removed from the schedule: the
    // destination moved or came back, so they go now regardless of their backoff.
    std::vector<std::string> pull_destination(const std::string& destination);
    // The oldest message waiting on this destination, removed from the schedule (a
    // probe of a destination that is down).
    std::optional<std::string> take_one(const std::string& destination);

    std::optional<UnixMicros> next_due() const;
    std::size_t waiting(const std::string& destination) const;
    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        std::multimap<UnixMicros, std::string>::iterator by_time;
        std::vector<std::string> destinations;
    };
    void erase(std::unordered_map<std::string, Entry>::iterator it);

    std::multimap<UnixMicros, std::string> by_time_;
    std::unordered_map<std::string, Entry> entries_;
    // Ordered: queue ids grow with arrival, so a set's first id is its oldest message
    // (take_one, the probe of a site that is down, is O(log n) with 1,000,000 queued).
    std::unordered_map<std::string, std::set<std::string>> by_destination_;
};

// The lower-case domain of an address ("" when it has none).
std::string destination_of(std::string_view address);
// The destinations of the recipients that are not final yet, each once, sorted.
std::vector<std::string> pending_destinations(const Envelope& envelope);

}  // namespace edgerelay::queue
