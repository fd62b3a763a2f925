// Queue listings for operators, as JSON and as text.
#include "queue/queue_report.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <cstdio>

namespace edgerelay::queue {
namespace {

bool iequals_suffix_domain(std::string_view address, std::string_view domain) {
    const auto at = address.rfind('@');
    if (at == std::string_view::npos) return false;
    const std::string_view d = address.substr(at + 1);
    return d.size() == domain.size() && std::equal(d.begin(), d.end(), domain.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
           });
}

std::string format_size(std::uint64_t bytes) {
    char buf[32];
    if (bytes < 1024) std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(bytes));
    else if (bytes < (1u << 20)) std::snprintf(buf, sizeof buf, "%.1fK", bytes / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.1fM", bytes / 1048576.0);
    return buf;
}

std::string angle(std::string_view address) { return "<" + std::string(address) + ">"; }

}  // namespace

bool QueueFilter::matches(const Envelope& envelope) const {
    if (state && envelope.state != *state) return false;
    if (domain.empty()) return true;
    return std::any_of(envelope.recipients.begin(), envelope.recipients.end(),
                       [&](const Recipient& r) { return iequals_suffix_domain(r.address, domain); });
}

boost::json::object envelope_json(const Envelope& e, UnixMicros now) {
    boost::json::array recipients;
    for (const auto& r : e.recipients) {
        recipients.push_back(boost::json::object{{"address", r.address},
                                                 {"state", to_string(r.state)},
                                                 {"attempts", r.attempts},
                                                 {"last_reply", r.last_reply}});
    }
    return boost::json::object{{"queue_id", e.queue_id},
                               {"message_id", e.message_id},
                               {"arrival", format_rfc3339(e.arrival)},
                               {"age", (now - e.arrival) / 1000000},
                               {"sender", e.sender},
                               {"recipients", std::move(recipients)},
                               {"state", to_string(e.state)},
                               {"attempts", e.attempts},
                               {"last_reply", e.last_reply},
                               {"size", e.size}};
}

boost::json::object envelope_detail_json(const Envelope& e, std::string_view headers, UnixMicros now) {
    boost::json::object object = envelope_json(e, now);
    object["client_ip"] = e.client_ip;
    object["helo"] = e.helo;
    object["tls"] = e.tls;
    object["headers"] = headers;
    return object;
}

std::string format_age(UnixMicros age) {
    const long long s = std::max<long long>(0, age / 1000000);
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m";
    if (s < 86400) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

std::string queue_list_text(const std::vector<Envelope>& envelopes, UnixMicros now) {
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "%-16s %5s %7s %-8s %4s  %s\n", "QUEUE ID", "AGE", "SIZE", "STATE", "TRY",
                  "SENDER / MESSAGE-ID / RECIPIENTS (STATE, ATTEMPTS, LAST REPLY)");
    out += line;
    for (const auto& e : envelopes) {
        std::snprintf(line, sizeof line, "%-16s %5s %7s %-8s %4u  %s\n", e.queue_id.c_str(),
                      format_age(now - e.arrival).c_str(), format_size(e.size).c_str(),
                      std::string(to_string(e.state)).c_str(), e.attempts, angle(e.sender).c_str());
        out += line;
        out += std::string(46, ' ') + angle(e.message_id) + "\n";
        for (const auto& r : e.recipients) {
            out += std::string(46, ' ') + "-> " + r.address + "  " + std::string(to_string(r.state)) + ", " +
                   std::to_string(r.attempts);
            if (!r.last_reply.empty()) out += ", " + r.last_reply;
            out += "\n";
        }
    }
    out += "-- " + std::to_string(envelopes.size()) + (envelopes.size() == 1 ? " message\n" : " messages\n");
    return out;
}

std::string queue_show_text(const Envelope& e, std::string_view headers, UnixMicros now) {
    std::string out;
    out += "Queue ID:    " + e.queue_id + "\n";
    out += "Message-ID:  " + angle(e.message_id) + "\n";
    out += "Arrival:     " + format_rfc3339(e.arrival) + " (" + format_age(now - e.arrival) + " ago)\n";
    out += "State:       " + std::string(to_string(e.state)) + ", attempts " + std::to_string(e.attempts) + "\n";
    if (!e.last_reply.empty()) out += "Last reply:  " + e.last_reply + "\n";
    out += "Size:        " + std::to_string(e.size) + " bytes\n";
    out += "Client:      " + e.client_ip + " (HELO " + e.helo + ")" + (e.tls ? ", TLS" : "") + "\n";
    out += "Sender:      " + angle(e.sender) + "\n";
    out += "Recipients:\n";
    for (const auto& r : e.recipients) {
        out += "  " + angle(r.address) + "  " + std::string(to_string(r.state)) + ", attempts " +
               std::to_string(r.attempts);
        if (r.last_attempt) out += ", last " + format_rfc3339(r.last_attempt);
        if (!r.last_reply.empty()) out += ": " + r.last_reply;
        out += "\n";
    }
    out += "Headers:\n";
    out += headers;
    if (!headers.empty() && headers.back() != '\n') out += "\n";
    return out;
}

std::string_view header_section(std::string_view content) {
    if (content.starts_with("\r\n")) return {};
    const auto end = content.find("\r\n\r\n");
    return end == std::string_view::npos ? content : content.substr(0, end + 2);
}

}  // namespace edgerelay::queue
