// The transaction log: one JSON object per line per event (receive, reject, attempt,
// deliver, ...), written through spdlog with size-based rotation. Support staff read
// it line by line; the tracking index is fed from the same events.
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace edgerelay::queue {

// One event under construction; "event" and "time" (RFC 3339 UTC) come first.
class LogEvent {
public:
    explicit LogEvent(std::string_view event);
    LogEvent& set(std::string_view key, std::string_view value);
    LogEvent& set(std::string_view key, const char* value) { return set(key, std::string_view(value)); }
    LogEvent& set(std::string_view key, const std::string& value) { return set(key, std::string_view(value)); }
    LogEvent& set(std::string_view key, std::int64_t value);
    LogEvent& set(std::string_view key, std::uint64_t value);
    LogEvent& set(std::string_view key, int value) { return set(key, static_cast<std::int64_t>(value)); }
    LogEvent& set(std::string_view key, unsigned value) { return set(key, static_cast<std::uint64_t>(value)); }
    LogEvent& set(std::string_view key, bool value);
    LogEvent& set(std::string_view key, double value);
    LogEvent& set(std::string_view key, boost::json::value value);
    const boost::json::object& fields() const { return fields_; }
    std::string to_json() const;

private:
    boost::json::object fields_;
};

class EventLog {
public:
    // path "" or "-" logs to standard output (for foreground use and tests).
    explicit EventLog(const std::string& path, std::size_t max_file_bytes = 100u << 20,
                      std::size_t max_files = 10);
    ~EventLog();
    void write(const LogEvent& event);
    void flush();

    // Also hands every event (and its JSON line) to sink, on the writing thread, after
    // the line is logged: the daemon feeds the tracking index this way. Set it before
    // events flow and clear it (nullptr) before the sink goes; it must be thread-safe.
    using Sink = std::function<void(const LogEvent& event, std::string_view json)>;
    void set_sink(Sink sink) { sink_ = std::move(sink); }

private:
    std::shared_ptr<spdlog::logger> logger_;
    Sink sink_;
};

}  // namespace edgerelay::queue
