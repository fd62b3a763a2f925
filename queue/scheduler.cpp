// The retry schedule in memory.
#include "queue/scheduler.h"

#include <algorithm>

namespace edgerelay::queue {

std::string destination_of(std::string_view address) {
    const auto at = address.rfind('@');
    std::string domain(at == std::string_view::npos ? std::string_view() : address.substr(at + 1));
    std::transform(domain.begin(), domain.end(), domain.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
    return domain;
}

std::vector<std::string> pending_destinations(const Envelope& envelope) {
    std::vector<std::string> destinations;
    for (const auto& r : envelope.recipients)
        if (r.state != RecipientState::delivered && r.state != RecipientState::bounced)
            destinations.push_back(destination_of(r.address));
    std::sort(destinations.begin(), destinations.end());
    destinations.erase(std::unique(destinations.begin(), destinations.end()), destinations.end());
    return destinations;
}

void Scheduler::schedule(const std::string& queue_id, UnixMicros due, std::vector<std::string> destinations) {
    remove(queue_id);
    auto by_time = by_time_.emplace(due, queue_id);
    // A new message has the greatest id yet: the hint makes its insertion constant time.
    for (const auto& destination : destinations) {
        auto& waiting = by_destination_[destination];
        waiting.emplace_hint(waiting.end(), queue_id);
    }
    entries_.emplace(queue_id, Entry{by_time, std::move(destinations)});
}

void Scheduler::erase(std::unordered_map<std::string, Entry>::iterator it) {
    by_time_.erase(it->second.by_time);
    for (const auto& destination : it->second.destinations) {
        auto d = by_destination_.find(destination);
        if (d == by_destination_.end()) continue;
        d->second.erase(it->first);
        if (d->second.empty()) by_destination_.erase(d);
    }
    entries_.erase(it);
}

void Scheduler::remove(const std::string& queue_id) {
    if (auto it = entries_.find(queue_id); it != entries_.end()) erase(it);
}

std::vector<std::string> Scheduler::pop_due(UnixMicros now, std::size_t limit) {
    std::vector<std::string> due;
    while (!by_time_.empty() && by_time_.begin()->first <= now && due.size() < limit) {
        std::string id = by_time_.begin()->second;
        erase(entries_.find(id));
        due.push_back(std::move(id));
    }
    return due;
}

std::vector<std::string> Scheduler::pull_destination(const std::string& destination) {
    std::vector<std::string> pulled;
    auto d = by_destination_.find(destination);
    if (d == by_destination_.end()) return pulled;
    // The whole set leaves at once; each message is then taken out of the time order and,
    // if it has other destinations too, out of their sets. (At the moment of a failover
    // this runs on the io thread for every message the site holds.) Oldest first, as the
    // set keeps them, which is also roughly the time order: queue ids grow with arrival
    // time, and erasing in that order walks the time index instead of jumping about it.
    pulled.assign(std::make_move_iterator(d->second.begin()), std::make_move_iterator(d->second.end()));
    by_destination_.erase(d);
    for (const auto& id : pulled)
        if (auto it = entries_.find(id); it != entries_.end()) erase(it);
    return pulled;
}

std::optional<std::string> Scheduler::take_one(const std::string& destination) {
    auto d = by_destination_.find(destination);
    if (d == by_destination_.end() || d->second.empty()) return std::nullopt;
    std::string oldest = *d->second.begin();
    remove(oldest);
    return oldest;
}

std::optional<UnixMicros> Scheduler::next_due() const {
    if (by_time_.empty()) return std::nullopt;
    return by_time_.begin()->first;
}

std::size_t Scheduler::waiting(const std::string& destination) const {
    auto d = by_destination_.find(destination);
    return d == by_destination_.end() ? 0 : d->second.size();
}

}  // namespace edgerelay::queue
