// The transaction log: events as JSON objects, one per line, through an unregistered
// spdlog logger (tests and tools open several) on a size-rotated file or stdout.
// Lines are flushed on errors and at least once a second by a small shared flusher,
// so `tail -f` and support staff see an event within a second without a write(2) per
// event.
#include <cmath>
#include "queue/event_log.h"

#include <boost/json/serialize.hpp>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "queue/envelope.h"

namespace edgerelay::queue {

namespace {

// spdlog::flush_every only reaches loggers in spdlog's global registry, which ours
// stay out of; this flushes every live event log once a second instead.
class PeriodicFlusher {
public:
    static PeriodicFlusher& instance() {
        static PeriodicFlusher flusher;
        return flusher;
    }

    void add(std::weak_ptr<spdlog::logger> logger) {
        std::lock_guard lock(mutex_);
        loggers_.push_back(std::move(logger));
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }

    ~PeriodicFlusher() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        std::vector<std::shared_ptr<spdlog::logger>> live;
        std::unique_lock lock(mutex_);
        while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
            live.clear();
            std::erase_if(loggers_, [&](const std::weak_ptr<spdlog::logger>& w) {
                auto l = w.lock();
                if (!l) return true;  // that EventLog is gone
                live.push_back(std::move(l));
                return false;
            });
            lock.unlock();
            for (auto& l : live) l->flush();
            live.clear();  // the last owner may be us: let the logger go outside the lock
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<std::weak_ptr<spdlog::logger>> loggers_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace

LogEvent::LogEvent(std::string_view event) {
    fields_["event"] = event;
    fields_["time"] = format_rfc3339(now_micros());
}

LogEvent& LogEvent::set(std::string_view key, std::string_view value) {
    fields_[key] = value;
    return *this;
}

LogEvent& LogEvent::set(std::string_view key, std::int64_t value) {
    fields_[key] = value;
    return *this;
}

LogEvent& LogEvent::set(std::string_view key, std::uint64_t value) {
    fields_[key] = value;
    return *this;
}

LogEvent& LogEvent::set(std::string_view key, bool value) {
    fields_[key] = value;
    return *this;
}

LogEvent& LogEvent::set(std::string_view key, double value) {
    // Milliseconds are all an operator reads in a delay.
    fields_[key] = std::round(value * 1000.0) / 1000.0;
    return *this;
}

LogEvent& LogEvent::set(std::string_view key, boost::json::value value) {
    fields_[key] = std::move(value);
    return *this;
}

std::string LogEvent::to_json() const { return boost::json::serialize(fields_); }

EventLog::EventLog(const std::string& path, std::size_t max_file_bytes, std::size_t max_files) {
    spdlog::sink_ptr sink;
    if (path.empty() || path == "-") {
        sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else {
        const auto dir = std::filesystem::path(path).parent_path();
        if (!dir.empty()) std::filesystem::create_directories(dir);  // throws, naming the path
        sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(path, max_file_bytes, max_files);
    }
    logger_ = std::make_shared<spdlog::logger>("edgerelay.events", std::move(sink));
    logger_->set_pattern("%v");  // the line is the JSON object and nothing else
    logger_->set_level(spdlog::level::info);
    logger_->flush_on(spdlog::level::err);
    PeriodicFlusher::instance().add(logger_);
}

EventLog::~EventLog() {
    if (logger_) logger_->flush();
}

void EventLog::write(const LogEvent& event) {
    // log(level, string_view) writes the text as is: JSON braces are no format string.
    const std::string json = event.to_json();
    logger_->log(spdlog::level::info, spdlog::string_view_t(json));
    if (sink_) sink_(event, json);
}

void EventLog::flush() { logger_->flush(); }

}  // namespace edgerelay::queue
