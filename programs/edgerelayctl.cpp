// edgerelayctl: the operator CLI, `edgerelayctl [--config FILE] NOUN VERB ...`.
// Read-only commands open the spool directly (a read-only LMDB snapshot), so they work
// whether the daemon runs or not.
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "conf/config.h"
#include "queue/queue_report.h"
#include "queue/spool.h"

namespace {

using namespace edgerelay;

constexpr const char* kUsage =
    "usage: edgerelayctl [--config FILE] NOUN VERB [ARGS] [--json]\n"
    "  queue list [--domain D] [--state ready|deferred|held] [--json]\n"
    "  queue show ID [--json]\n";

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

}  // namespace

int main(int argc, char** argv) {
    const Invocation inv = parse_invocation(argc, argv);
    if (inv.words.size() < 2) fail("missing command");
    const conf::Config config = load_config(inv);
    const std::string command = inv.words[0] + " " + inv.words[1];
    try {
        if (command == "queue list" || command == "queue show") {
            const queue::Spool spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_only);
            return command == "queue list" ? queue_list(inv, spool) : queue_show(inv, spool);
        }
    } catch (const std::exception& e) {
        fail(e.what(), 1);
    }
    fail("unknown command '" + command + "'");
}
