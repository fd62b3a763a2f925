// `edgerelayctl queue ...`: list and show read the spool directly; flush, hold,
// release, delete and bounce go through the daemon's admin API, which does them in
// order with delivery and logs each one.
#include <iostream>

#include "programs/ctl/admin_client.h"
#include "programs/ctl/ctl.h"
#include "queue/queue_report.h"
#include "queue/spool.h"

namespace edgerelay::ctl {

namespace {

namespace http = boost::beast::http;

queue::Spool open_spool(const conf::Config& config) {
    return queue::Spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_only);
}

int queue_list(const Invocation& inv, const conf::Config& config) {
    if (inv.words.size() != 2) fail("queue list takes options only");
    inv.allow_options({"domain", "state"});
    queue::QueueFilter filter;
    filter.domain = inv.option("domain");
    if (const std::string state = inv.option("state"); !state.empty()) {
        filter.state = queue::message_state_from_string(state);
        if (!filter.state) fail("--state must be ready, deferred or held");
    }
    const queue::Spool spool = open_spool(config);
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

int queue_show(const Invocation& inv, const conf::Config& config) {
    if (inv.words.size() != 3) fail("queue show needs one queue id");
    inv.allow_options({});
    const std::string& id = inv.words[2];
    const queue::Spool spool = open_spool(config);
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

// flush, hold, release, delete, bounce: by queue ids, by --domain, or (flush) --all.
int queue_control(const Invocation& inv, const conf::Config& config, const std::string& action) {
    inv.allow_options({"domain"});
    const std::vector<std::string> ids(inv.words.begin() + 2, inv.words.end());
    const std::string domain = inv.option("domain");
    const int selectors = (ids.empty() ? 0 : 1) + (domain.empty() ? 0 : 1) + (inv.all ? 1 : 0);
    if (inv.all && action != "flush") fail("--all is for queue flush only; name queue ids or --domain");
    if (selectors != 1)
        fail("queue " + action + " needs queue ids, or --domain D" + (action == "flush" ? ", or --all" : ""));

    boost::json::array touched;
    int status = 0;
    auto collect = [&](const AdminResponse& response) {
        if (const auto* list = response.body.is_object() ? response.body.as_object().if_contains("messages") : nullptr;
            list && list->is_array())
            for (const auto& item : list->as_array()) touched.push_back(item);
    };
    if (ids.empty()) {
        std::string target = "/api/v1/queue/" + action;
        if (!domain.empty()) target += "?domain=" + url_encode(domain);
        const auto response = admin_request(config, http::verb::post, target);
        if (response.status != 200) fail(response.error(), 1);
        collect(response);
    } else {
        for (const auto& id : ids) {
            const auto response = admin_request(config, http::verb::post, "/api/v1/queue/" + url_encode(id) + "/" + action);
            if (response.status == 200) {
                collect(response);
            } else {
                std::cerr << "edgerelayctl: " << id << ": " << response.error() << "\n";
                status = 1;
            }
        }
    }
    if (inv.json) {
        print_json_list("messages", std::move(touched));
    } else {
        // A domain-wide action may touch a million messages: the count, and the ids only
        // while they fit on a line (--json and the log have them all).
        constexpr std::size_t kListedIds = 20;
        std::cout << action << ": " << touched.size() << (touched.size() == 1 ? " message" : " messages");
        std::size_t listed = 0;
        for (const auto& item : touched) {
            if (listed == kListedIds) break;
            if (item.is_object())
                if (const auto* id = item.as_object().if_contains("queue_id"); id && id->is_string()) {
                    std::cout << " " << id->as_string().c_str();
                    ++listed;
                }
        }
        if (touched.size() > listed) std::cout << " and " << touched.size() - listed << " more (--json lists them all)";
        std::cout << "\n";
    }
    return status;
}

}  // namespace

int queue_command(const Invocation& inv, const conf::Config& config) {
    const std::string& verb = inv.words[1];
    if (verb == "list") return queue_list(inv, config);
    if (verb == "show") return queue_show(inv, config);
    if (verb == "summary") return queue_summary_command(inv, config);
    if (verb == "flush" || verb == "hold" || verb == "release" || verb == "delete" || verb == "bounce")
        return queue_control(inv, config, verb);
    fail("unknown command 'queue " + verb + "'");
}

}  // namespace edgerelay::ctl
