// The tracking index: every log event about a message, kept in the spool's LMDB
// environment so that "where is my mail?" (`edgerelayctl log`) is answered by index
// seeks by Message-ID, queue id, sender, recipient or time, not by reading log files.
//   track_events         queue id + stamp (8 bytes, big-endian) -> the event's JSON line
//   track_messages       queue id -> summary: first and last event time, Message-ID, sender
//   track_by_message_id  Message-ID -> queue id                       (DUPSORT)
//   track_by_sender      lower-cased sender, "<>" for the null sender -> queue id (DUPSORT)
//   track_by_recipient   lower-cased recipient -> queue id            (DUPSORT)
//   track_by_time        last event time (8 bytes BE) + queue id -> "" (recency, --since, pruning)
// Writes run inside SpoolWriter operations (TrackingFeed batches them); reads take one
// read-only snapshot, so edgerelayctl answers whether or not the daemon runs.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "queue/envelope.h"
#include "queue/spool.h"

namespace edgerelay::queue {

class LogEvent;
class SpoolWriter;

// What the index takes from one log event.
struct TrackingEvent {
    UnixMicros time = 0;
    std::string queue_id;
    std::string message_id;
    std::optional<std::string> sender;    // receive events only; "" is the null sender
    std::vector<std::string> recipients;  // "recipients" of a receive, "recipient" of the others
    std::string json;                     // the event as logged
};

// nullopt for an event about no message (reject, route).
std::optional<TrackingEvent> tracking_event(const boost::json::object& fields, std::string json);

// Filters combine with AND; empty / nullopt means "any".
struct TrackingQuery {
    std::string message_id;  // with or without angle brackets
    std::string queue_id;
    std::string sender;  // case-insensitive exact address; "<>" is the null sender
    std::string recipient;
    std::optional<UnixMicros> since;  // messages with an event at or after since ...
    std::optional<UnixMicros> until;  // ... and at or before until
    std::size_t limit = 100;          // the most recent this many; 0 = no limit
};

struct TrackedMessage {
    std::string queue_id;
    std::string message_id;
    std::optional<std::string> sender;  // unknown when its receive event is not indexed
    UnixMicros first = 0, last = 0;
    std::vector<std::string> events;  // JSON lines as logged, oldest first
};

struct TrackingResult {
    bool available = true;                // false: the spool has no tracking index yet
    std::vector<TrackedMessage> messages; // oldest first (by first event)
    bool truncated = false;               // more matched than the limit
};

// Entries per database (for tests and metrics).
struct TrackingCounts {
    std::uint64_t events = 0, messages = 0, by_message_id = 0, by_sender = 0, by_recipient = 0, by_time = 0;
};

class TrackingIndex {
public:
    explicit TrackingIndex(const Spool& spool) : spool_(spool) {}

    // Within a SpoolWriter operation (or Spool::write). Events about one message must
    // come in log order; they are kept in that order.
    std::error_code add(SpoolWriteTxn& txn, const std::vector<TrackingEvent>& events);
    // Removes up to max_messages messages whose last event is before cutoff, all their
    // events and index entries; `more` tells whether older ones remain.
    std::error_code prune(SpoolWriteTxn& txn, UnixMicros cutoff, std::size_t max_messages, std::size_t& removed,
                          bool& more);

    TrackingResult find(const TrackingQuery& query) const;
    TrackingCounts counts() const;

private:
    const Spool& spool_;
    UnixMicros last_stamp_ = 0;  // writer side only: keeps event keys unique and in order
};

// The daemon's link from the event log to the index: events are buffered and written by
// one SpoolWriter operation per flush interval, grouped with intake commits (no sync of
// their own); a bounded prune runs every prune interval and again at once while old
// messages remain. A crash loses at most the last interval's entries (the JSON log has
// them), never a spool record.
class TrackingFeed {
public:
    static constexpr std::chrono::milliseconds flush_interval{100};
    static constexpr std::size_t prune_batch = 500;  // messages per prune operation

    TrackingFeed(TrackingIndex& index, SpoolWriter& writer, std::chrono::milliseconds retention);
    ~TrackingFeed();
    TrackingFeed(const TrackingFeed&) = delete;
    TrackingFeed& operator=(const TrackingFeed&) = delete;

    // The EventLog sink; any thread.
    void accept(const LogEvent& event, std::string_view json);
    // Writes what is buffered, waits for it, and ends the feed's thread. Call it before
    // SpoolWriter::stop().
    void stop();

    // retention / 4, between 1 s and 1 min.
    static std::chrono::milliseconds prune_interval(std::chrono::milliseconds retention);

private:
    void run();
    void submit_events(std::vector<TrackingEvent> events, bool wait);
    void submit_prune();
    void report(const char* what, std::error_code ec);

    TrackingIndex& index_;
    SpoolWriter& writer_;
    const std::chrono::milliseconds retention_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<TrackingEvent> buffer_;
    bool stopping_ = false;
    bool prune_running_ = false;
    bool prune_more_ = false;
    bool failing_ = false;
    std::thread thread_;
};

// Times for --since / --until: RFC 3339 ("2026-11-26T02:00:00Z", fraction and offset
// optional, or a date alone) or a duration meaning that long before now ("1h", "30m").
std::optional<UnixMicros> parse_rfc3339(std::string_view text);
std::optional<UnixMicros> parse_log_time(std::string_view text, UnixMicros now);
// A query from named parameters (message_id, queue_id, from, to, since, until, limit),
// as `edgerelayctl log` and GET /api/v1/log take them; returns what is wrong, or "".
std::string tracking_query_from(const std::function<std::string(std::string_view name)>& parameter, UnixMicros now,
                                TrackingQuery& query);

// `edgerelayctl log` output: per message a header line (queue id, Message-ID, sender),
// then one mail-log line per event; or {"events":[...]}, the event objects as logged.
std::string tracking_event_line(const boost::json::object& event);
std::string tracking_text(const std::vector<TrackedMessage>& messages);
std::string tracking_json(const std::vector<TrackedMessage>& messages);

}  // namespace edgerelay::queue
