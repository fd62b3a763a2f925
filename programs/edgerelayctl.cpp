// edgerelayctl: the operator CLI, `edgerelayctl [--config FILE] NOUN VERB ...`.
// Read-only commands open the spool directly (a read-only LMDB snapshot), so they work
// whether the daemon runs or not.
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "conf/config.h"
#include "queue/queue_report.h"
#include "queue/spool.h"
#include "queue/tracking_index.h"

namespace {

using namespace edgerelay;

constexpr const char* kUsage =
    "usage: edgerelayctl [--config FILE] NOUN VERB [ARGS] [--json]\n"
    "  queue list [--domain D] [--state ready|deferred|held] [--json]\n"
    "  queue show ID [--json]\n"
    "  log [--message-id M] [--queue-id Q] [--from A] [--to A] [--since T] [--until T]\n"
    "      [--limit N] [--json]   T: RFC 3339 (2026-11-26T02:00:00Z) or a time ago (30m, 1h, 2d);\n"
    "      filters combine; without any, the most recent N (100) messages\n";

struct Invocation {
    std::string config_path;
    bool json = false;
    std::vector<std::string> words;                       // noun, verb, positional arguments
    std::vector<std::pair<std::string, std::string>> options;  // --name value
    std::string option(const std::string& name) const {
        for (const auto& [key, value] : options)
            if (key == name) return value;
        return {};
    }
};

[[noreturn]] void fail(const std::string& message, int status = 2) {
    std::cerr << "edgerelayctl: " << message << "\n";
    if (status == 2) std::cerr << kUsage;
    std::exit(status);
}

Invocation parse_invocation(int argc, char** argv) {
    Invocation inv;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--json") {
            inv.json = true;
        } else if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            std::exit(0);
        } else if (arg.rfind("--", 0) == 0) {
            if (i + 1 == argc) fail(arg + " needs a value");
            if (arg == "--config") inv.config_path = argv[++i];
            else inv.options.emplace_back(arg.substr(2), argv[++i]);
        } else {
            inv.words.push_back(arg);
        }
    }
    return inv;
}

conf::Config load_config(const Invocation& inv) {
    if (inv.config_path.empty()) return conf::default_config();
    auto loaded = conf::load_config_file(inv.config_path);
    if (!loaded.config) {
        for (const auto& error : loaded.errors) std::cerr << error.to_string() << "\n";
        std::exit(2);
    }
    return std::move(*loaded.config);
}

void print_json_list(const char* key, boost::json::array items) {
    boost::json::object out;
    out[key] = std::move(items);
    std::cout << boost::json::serialize(out) << "\n";
}

int queue_list(const Invocation& inv, const queue::Spool& spool) {
    queue::QueueFilter filter;
    filter.domain = inv.option("domain");
    if (const std::string state = inv.option("state"); !state.empty()) {
        filter.state = queue::message_state_from_string(state);
        if (!filter.state) fail("--state must be ready, deferred or held");
    }
    std::vector<queue::Envelope> selected;
    spool.for_each_envelope([&](const queue::Envelope& e) {
        if (filter.matches(e)) selected.push_back(e);
        return true;
    });
    const auto now = queue::now_micros();
    if (inv.json) {
        boost::json::array items;
        for (const auto& e : selected) items.push_back(queue::envelope_json(e, now));
        print_json_list("messages", std::move(items));
    } else {
        std::cout << queue::queue_list_text(selected, now);
    }
    return 0;
}

int queue_show(const Invocation& inv, const queue::Spool& spool) {
    if (inv.words.size() != 3) fail("queue show needs one queue id");
    const std::string& id = inv.words[2];
    const auto envelope = spool.find_envelope(id);
    if (!envelope) fail("no message " + id + " in the queue", 1);
    const std::string content = spool.find_content(id).value_or(std::string());
    const auto headers = queue::header_section(content);
    const auto now = queue::now_micros();
    if (inv.json) {
        boost::json::array items;
        items.push_back(queue::envelope_detail_json(*envelope, headers, now));
        print_json_list("messages", std::move(items));
    } else {
        std::cout << queue::queue_show_text(*envelope, headers, now);
    }
    return 0;
}

int tracking_log(const Invocation& inv, const queue::Spool& spool) {
    if (inv.words.size() != 1) fail("log takes options only");
    static const char* const known[] = {"message-id", "queue-id", "from", "to", "since", "until", "limit"};
    for (const auto& [name, value] : inv.options)
        if (std::find(std::begin(known), std::end(known), name) == std::end(known)) fail("log has no option --" + name);
    queue::TrackingQuery query;
    query.message_id = inv.option("message-id");
    query.queue_id = inv.option("queue-id");
    query.sender = inv.option("from");
    query.recipient = inv.option("to");
    const auto now = queue::now_micros();
    for (auto [name, bound] : {std::pair{"since", &query.since}, std::pair{"until", &query.until}}) {
        if (const std::string text = inv.option(name); !text.empty()) {
            *bound = queue::parse_log_time(text, now);
            if (!*bound) fail(std::string("--") + name + " wants a time like 2026-11-26T02:00:00Z or 30m (ago), not '" + text + "'");
        }
    }
    if (const std::string limit = inv.option("limit"); !limit.empty()) {
        try {
            std::size_t used = 0;
            query.limit = std::stoul(limit, &used);
            if (used != limit.size()) throw std::invalid_argument(limit);
        } catch (const std::exception&) {
            fail("--limit wants a number (0: no limit)");
        }
    }
    const auto result = queue::TrackingIndex(spool).find(query);
    if (!result.available) fail("spool " + spool.path() + " has no tracking index yet (edgerelayd creates it)", 1);
    std::cout << (inv.json ? queue::tracking_json(result.messages) : queue::tracking_text(result.messages));
    if (result.truncated)
        std::cerr << "edgerelayctl: more messages match; showing the " << query.limit << " most recent (--limit N)\n";
    else if (result.messages.empty() && !inv.json)
        std::cerr << "edgerelayctl: no matching messages\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Invocation inv = parse_invocation(argc, argv);
    if (inv.words.empty() || (inv.words[0] != "log" && inv.words.size() < 2)) fail("missing command");
    const conf::Config config = load_config(inv);
    const std::string command = inv.words[0] == "log" ? inv.words[0] : inv.words[0] + " " + inv.words[1];
    try {
        if (command == "log") {
            const queue::Spool spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_only);
            return tracking_log(inv, spool);
        }
        if (command == "queue list" || command == "queue show") {
            const queue::Spool spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_only);
            return command == "queue list" ? queue_list(inv, spool) : queue_show(inv, spool);
        }
    } catch (const std::exception& e) {
        fail(e.what(), 1);
    }
    fail("unknown command '" + command + "'");
}
