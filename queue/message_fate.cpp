// Outcomes in, fate out: see message_fate.h.
#include "queue/message_fate.h"

#include <algorithm>
#include <random>

#include "queue/dsn.h"
#include "queue/retry_schedule.h"

namespace edgerelay::queue {
namespace {

bool is_status(std::string_view text) {
    // class "." subject "." detail, RFC 3463: 2/4/5 . 1-3 digits . 1-3 digits
    if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.') return false;
    std::size_t i = 2, digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++digits;
    if (digits == 0 || digits > 3 || i >= text.size() || text[i] != '.') return false;
    ++i;
    digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++digits;
    return digits > 0 && digits <= 3 && (i == text.size() || text[i] == ' ');
}

DsnRecipient dsn_recipient(const Recipient& r, const std::string& status, const std::string& remote_mta) {
    return DsnRecipient{r.address, status, remote_mta, r.last_reply};
}

}  // namespace

std::string status_of_reply(std::string_view reply) {
    const auto space = reply.find(' ');
    if (space != std::string_view::npos) {
        std::string_view rest = reply.substr(space + 1);
        const std::string_view candidate = rest.substr(0, rest.find(' '));
        if (is_status(candidate) && candidate[0] == reply[0]) return std::string(candidate);
    }
    if (!reply.empty() && reply[0] == '5') return "5.0.0";
    if (!reply.empty() && reply[0] == '2') return "2.0.0";
    return "4.0.0";
}

std::error_code record_outcomes(SpoolWriteTxn& txn, const std::string& queue_id,
                                const std::vector<RecipientOutcome>& outcomes, const FatePolicy& policy,
                                UnixMicros now, std::uint32_t jitter, std::string_view content,
                                const std::string& dsn_queue_id, FateDecision& decision) {
    decision = FateDecision{};
    auto found = txn.find_envelope(queue_id);
    if (!found) return {};  // deleted meanwhile (operator, or a run before a crash)
    decision.found = true;
    Envelope env = std::move(*found);

    std::vector<DsnRecipient> failed;
    for (const auto& outcome : outcomes) {
        auto r = std::find_if(env.recipients.begin(), env.recipients.end(),
                              [&](const Recipient& x) { return x.address == outcome.address; });
        if (r == env.recipients.end() || is_final(r->state)) continue;
        r->state = outcome.state;
        r->attempts += 1;
        r->last_reply = outcome.reply;
        r->last_attempt = now;
        env.last_reply = outcome.reply;
        if (outcome.state == RecipientState::bounced)
            failed.push_back(dsn_recipient(*r, outcome.status.empty() ? status_of_reply(outcome.reply) : outcome.status,
                                           outcome.remote_mta));
    }
    env.attempts += 1;

    // RFC 5321 4.5.4.1: give up after max_lifetime, telling the sender (4.4.7).
    const UnixMicros age = now - env.arrival;
    const auto age_ms = std::chrono::milliseconds(age / 1000);
    if (age_ms >= policy.max_lifetime) {
        for (auto& r : env.recipients) {
            if (is_final(r.state)) continue;
            r.state = RecipientState::bounced;
            if (r.last_reply.empty()) r.last_reply = "delivery time expired";
            decision.expired.push_back(r.address);
            failed.push_back(dsn_recipient(r, "4.4.7", ""));
        }
    }

    const bool all_final =
        std::all_of(env.recipients.begin(), env.recipients.end(), [](const Recipient& r) { return is_final(r.state); });
    // Never report on a report (RFC 3464 / RFC 5321 6.1: no bounce to the null sender).
    const bool may_report = !env.sender.empty() && !env.is_bounce;

    DsnRequest request;
    if (may_report && !failed.empty()) {
        request.kind = DsnKind::failure;
        request.recipients = std::move(failed);
        decision.dsn_kind = "failure";
    } else if (may_report && !all_final && policy.delay_warning.count() > 0 && age_ms >= policy.delay_warning &&
               !env.delay_warning_sent) {
        request.kind = DsnKind::delay;
        for (const auto& r : env.recipients)
            if (!is_final(r.state)) request.recipients.push_back(dsn_recipient(r, status_of_reply(r.last_reply), ""));
        env.delay_warning_sent = true;
        decision.dsn_kind = "delay";
    }

    if (!request.recipients.empty()) {
        request.reporting_mta = policy.hostname;
        request.postmaster = policy.postmaster;
        request.original = &env;
        request.original_content = content;
        request.now = now;
        request.message_id = dsn_queue_id + "@" + policy.hostname;
        Envelope dsn;
        dsn.queue_id = dsn_queue_id;
        dsn.arrival = now;
        dsn.sender = "";
        dsn.recipients.push_back(Recipient{env.sender});
        dsn.message_id = request.message_id;
        dsn.is_bounce = true;
        dsn.next_attempt = now;
        const std::string body = build_dsn(request);
        dsn.size = body.size();
        if (auto ec = txn.put_message(dsn, body)) return ec;
        decision.dsn = std::move(dsn);
    }

    if (all_final) {
        decision.done = true;
        decision.envelope = std::move(env);
        return txn.remove_message(queue_id);
    }
    if (env.state != MessageState::held) env.state = MessageState::deferred;
    std::mt19937 random(jitter);
    env.next_attempt = now + retry_delay(env.attempts, policy.retry_initial, policy.retry_max, random).count() * 1000;
    decision.envelope = env;
    return txn.put_envelope(env);
}

}  // namespace edgerelay::queue
