// The transaction log: JSON lines that parse back, event and time first, rotation by
// size, the periodic flush, standard output, and several logs at once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "queue/event_log.h"

namespace edgerelay::queue {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class EventLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgerelay-log-XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

std::vector<std::string> read_lines(const fs::path& file) {
    std::vector<std::string> lines;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// "2026-11-26T02:36:11.123Z": digits where the pattern has 'd', the rest literally.
bool is_rfc3339_millis(std::string_view t) {
    constexpr std::string_view pattern = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (t.size() != pattern.size()) return false;
    for (std::size_t i = 0; i < t.size(); ++i)
        if (pattern[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(t[i])) : t[i] != pattern[i]) return false;
    return true;
}

// Parses one line and checks the shape every event has.
json::object parse_event(const std::string& line) {
    json::object o = json::parse(line).as_object();
    EXPECT_GE(o.size(), 2u);
    auto it = o.begin();
    EXPECT_EQ(it->key(), "event");
    ++it;
    EXPECT_EQ(it->key(), "time");
    EXPECT_TRUE(is_rfc3339_millis(it->value().as_string())) << it->value();
    return o;
}

LogEvent sample_event(int i) {
    return LogEvent("attempt")
        .set("queue_id", "0006123456789ABC")
        .set("message_id", std::string("id-") + std::to_string(i) + "@example.org")
        .set("recipient", "user@rockerduck.example")
        .set("ip", "192.0.2.25")
        .set("port", 25)
        .set("tls", true)
        .set("reply_code", 451)
        .set("reply", "451 4.3.0 \"quoted\"\nsecond line \xE2\x9C\x89")
        .set("attempt", static_cast<unsigned>(i))
        .set("delay_us", std::int64_t{-5})
        .set("size", std::uint64_t{18446744073709551615ull});
}

TEST(LogEventTest, EventAndTimeComeFirstAndTypesSurvive) {
    auto e = sample_event(3);
    e.set("mx", json::array{"mx1.example", "mx2.example"});
    e.set("event", "deliver");  // overwriting keeps the place
    const auto line = e.to_json();
    EXPECT_EQ(line.find('\n'), std::string::npos);  // one event, one line
    EXPECT_EQ(line.rfind("{\"event\":\"deliver\",\"time\":\"", 0), 0u) << line;
    const auto o = parse_event(line);
    EXPECT_EQ(o.at("queue_id").as_string(), "0006123456789ABC");
    EXPECT_EQ(o.at("port").as_int64(), 25);
    EXPECT_EQ(o.at("tls").as_bool(), true);
    EXPECT_EQ(o.at("attempt").to_number<std::uint64_t>(), 3u);
    EXPECT_EQ(o.at("delay_us").as_int64(), -5);
    EXPECT_EQ(o.at("size").as_uint64(), 18446744073709551615ull);
    EXPECT_EQ(o.at("reply").as_string(), "451 4.3.0 \"quoted\"\nsecond line \xE2\x9C\x89");
    EXPECT_EQ(o.at("mx").as_array().size(), 2u);
    EXPECT_EQ(e.fields().at("event").as_string(), "deliver");
}

TEST_F(EventLogTest, OneJsonObjectPerLine) {
    const auto path = dir_ / "var" / "log" / "edgerelay.log";  // directories created
    {
        EventLog log(path.string());
        for (int i = 0; i < 100; ++i) log.write(sample_event(i));
    }
    const auto lines = read_lines(path);
    ASSERT_EQ(lines.size(), 100u);
    for (int i = 0; i < 100; ++i) {
        const auto o = parse_event(lines[i]);
        EXPECT_EQ(o.at("event").as_string(), "attempt");
        EXPECT_EQ(o.at("message_id").as_string(), "id-" + std::to_string(i) + "@example.org");
    }
}

TEST_F(EventLogTest, RotatesWhenTheSizeLimitIsExceeded) {
    const auto path = dir_ / "edgerelay.log";
    constexpr std::size_t limit = 4096;
    const auto line_size = sample_event(0).to_json().size() + 1;
    {
        EventLog log(path.string(), limit, 3);
        for (int i = 0; i < 200; ++i) log.write(sample_event(i));
    }
    ASSERT_TRUE(fs::exists(path));
    ASSERT_TRUE(fs::exists(dir_ / "edgerelay.1.log"));
    EXPECT_TRUE(fs::exists(dir_ / "edgerelay.3.log"));
    EXPECT_FALSE(fs::exists(dir_ / "edgerelay.4.log"));  // max_files kept
    std::size_t total = 0;
    for (const auto& file : {path, dir_ / "edgerelay.1.log", dir_ / "edgerelay.2.log", dir_ / "edgerelay.3.log"}) {
        EXPECT_LE(fs::file_size(file), limit) << file;
        const auto lines = read_lines(file);
        for (const auto& line : lines) parse_event(line);  // no line cut in two
        total += lines.size();
    }
    EXPECT_GE(total, 4 * (limit / line_size - 1));
    // The newest events are in the current file.
    const auto current = read_lines(path);
    ASSERT_FALSE(current.empty());
    EXPECT_EQ(parse_event(current.back()).at("message_id").as_string(), "id-199@example.org");
}

TEST_F(EventLogTest, FlushesWithinAboutASecond) {
    const auto path = dir_ / "edgerelay.log";
    EventLog log(path.string());
    log.write(sample_event(1));  // neither flushed nor closed
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (read_lines(path).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(read_lines(path).size(), 1u);
    parse_event(read_lines(path)[0]);
}

TEST_F(EventLogTest, SeveralLogsAtOnce) {
    EventLog a((dir_ / "a.log").string()), b((dir_ / "b.log").string());
    a.write(LogEvent("receive").set("queue_id", "A"));
    b.write(LogEvent("deliver").set("queue_id", "B"));
    a.flush();
    b.flush();
    ASSERT_EQ(read_lines(dir_ / "a.log").size(), 1u);
    ASSERT_EQ(read_lines(dir_ / "b.log").size(), 1u);
    EXPECT_EQ(parse_event(read_lines(dir_ / "a.log")[0]).at("queue_id").as_string(), "A");
    EXPECT_EQ(parse_event(read_lines(dir_ / "b.log")[0]).at("event").as_string(), "deliver");
}

TEST(EventLogStdout, DashAndEmptyWriteToStandardOutput) {
    for (const char* path : {"-", ""}) {
        testing::internal::CaptureStdout();
        {
            EventLog log(path);
            log.write(LogEvent("receive").set("queue_id", "0006123456789ABC"));
            log.flush();
        }
        std::fflush(stdout);
        const auto out = testing::internal::GetCapturedStdout();
        ASSERT_FALSE(out.empty()) << "path \"" << path << "\"";
        EXPECT_EQ(out.back(), '\n');
        EXPECT_EQ(parse_event(out.substr(0, out.size() - 1)).at("queue_id").as_string(), "0006123456789ABC");
        EXPECT_FALSE(fs::exists(path));
    }
}

}  // namespace
}  // namespace edgerelay::queue
