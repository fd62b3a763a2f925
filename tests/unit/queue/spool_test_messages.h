// Messages for the spool tests, and a fresh directory per test for their spool.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "queue/envelope.h"
#include "queue/queue_id.h"

namespace edgerelay::queue::testing {

// A directory under $TMPDIR (or /tmp) named after the suite, removed afterwards.
class SpoolDirTest : public ::testing::Test {
protected:
    explicit SpoolDirTest(std::string prefix) : prefix_(std::move(prefix)) {}
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgerelay-" + prefix_ + "-XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string spool_path() const { return (dir_ / "spool").string(); }
    std::filesystem::path dir_;

private:
    std::string prefix_;
};

inline Envelope make_envelope(const std::string& id) {
    Envelope e;
    e.queue_id = id;
    e.arrival = now_micros();
    e.sender = "sender@example.org";
    e.recipients.push_back({"rcpt@rockerduck.example"});
    e.message_id = id + "@edge.example.net";
    e.size = 4096;
    return e;
}

// Content that names its message, so a check proves the right bytes came back.
inline std::string content_for(const std::string& id, std::size_t size = 4096) {
    std::string c = "Message-ID: <" + id + "@edge.example.net>\r\n\r\n";
    while (c.size() < size) c += id;
    c.resize(size);
    return c;
}

}  // namespace edgerelay::queue::testing
