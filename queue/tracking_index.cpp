// The tracking index: what one event adds to the six databases, how a lookup picks the
// most selective index and checks the other filters by exact seeks (MDB_GET_BOTH), how
// pruning removes a message whole, and the daemon's batching feed. The mail-log text of
// `edgerelayctl log` is at the end.
#include "queue/tracking_index.h"

#include <lmdb.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <set>
#include <stdexcept>

#include "conf/config.h"
#include "queue/event_log.h"
#include "queue/spool_writer.h"

namespace edgerelay::queue {

namespace {

constexpr std::size_t max_key = 511;  // LMDB's default key (and DUPSORT value) limit

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view as_view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

void put_be64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
std::uint64_t get_be64(std::string_view s) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
    return v;
}
std::uint64_t as_key_time(UnixMicros t) { return t < 0 ? 0 : static_cast<std::uint64_t>(t); }

std::string_view strip_angle(std::string_view s) {
    if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
    return s;
}

// Addresses match case-insensitively (ASCII); the null sender is "<>".
std::string address_key(std::string_view address) {
    address = strip_angle(address);
    if (address.empty()) return "<>";
    std::string key(address);
    for (char& c : key)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return key;
}
// A Message-ID over LMDB's key limit is indexed by its prefix; lookups compare whole ones.
std::string message_id_key(std::string_view message_id) {
    return std::string(strip_angle(message_id).substr(0, max_key));
}
std::string event_key(std::string_view queue_id, UnixMicros stamp) {
    std::string key(queue_id);
    put_be64(key, as_key_time(stamp));
    return key;
}
std::string time_key(UnixMicros t, std::string_view queue_id) {
    std::string key;
    put_be64(key, as_key_time(t));
    key += queue_id;
    return key;
}

// track_messages record: first, last (BE64), flags (1: sender known), then the
// Message-ID and the sender, each with a 2-byte length.
struct Summary {
    UnixMicros first = 0, last = 0;
    std::string message_id;
    std::optional<std::string> sender;
};

void put_short_string(std::string& out, std::string_view s) {
    s = s.substr(0, 0xffff);
    out.push_back(static_cast<char>(s.size() >> 8));
    out.push_back(static_cast<char>(s.size() & 0xff));
    out += s;
}
bool get_short_string(std::string_view& in, std::string& out) {
    if (in.size() < 2) return false;
    const std::size_t n = (static_cast<unsigned char>(in[0]) << 8) | static_cast<unsigned char>(in[1]);
    if (in.size() < 2 + n) return false;
    out.assign(in.substr(2, n));
    in.remove_prefix(2 + n);
    return true;
}
std::string encode_summary(const Summary& s) {
    std::string out;
    put_be64(out, as_key_time(s.first));
    put_be64(out, as_key_time(s.last));
    out.push_back(s.sender ? 1 : 0);
    put_short_string(out, s.message_id);
    put_short_string(out, s.sender.value_or(std::string()));
    return out;
}
std::optional<Summary> decode_summary(std::string_view in) {
    if (in.size() < 17) return std::nullopt;
    Summary s;
    s.first = static_cast<UnixMicros>(get_be64(in));
    s.last = static_cast<UnixMicros>(get_be64(in.substr(8)));
    const bool has_sender = in[16] != 0;
    in.remove_prefix(17);
    std::string sender;
    if (!get_short_string(in, s.message_id) || !get_short_string(in, sender)) return std::nullopt;
    if (has_sender) s.sender = std::move(sender);
    return s;
}

class Cursor {
public:
    Cursor(MDB_txn* txn, MDB_dbi dbi) { rc_ = mdb_cursor_open(txn, dbi, &cursor_); }
    ~Cursor() {
        if (rc_ == 0) mdb_cursor_close(cursor_);
    }
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    int status() const { return rc_; }
    int get(MDB_val& key, MDB_val& val, MDB_cursor_op op) { return mdb_cursor_get(cursor_, &key, &val, op); }
    MDB_cursor* raw() { return cursor_; }

private:
    MDB_cursor* cursor_ = nullptr;
    int rc_ = 0;
};

std::error_code lmdb_error(int rc) {
    if (rc == 0) return {};
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) return SpoolError::full;
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) return SpoolError::corrupt;
    return SpoolError::io;
}

std::error_code put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0) {
    MDB_val k = as_val(key), v = as_val(value);
    const int rc = mdb_put(txn, dbi, &k, &v, flags);
    return rc == MDB_KEYEXIST ? std::error_code{} : lmdb_error(rc);  // NODUPDATA: already there
}
std::error_code del(MDB_txn* txn, MDB_dbi dbi, std::string_view key, const std::string_view* value = nullptr) {
    MDB_val k = as_val(key), v;
    if (value) v = as_val(*value);
    const int rc = mdb_del(txn, dbi, &k, value ? &v : nullptr);
    return rc == MDB_NOTFOUND ? std::error_code{} : lmdb_error(rc);
}

bool valid_queue_id(std::string_view id) { return !id.empty() && id.size() + 8 <= max_key; }

// Visits the keys of track_events that belong to queue_id, in order.
template <typename Visit>
int for_each_event(Cursor& cursor, std::string_view queue_id, Visit&& visit) {
    std::string start = event_key(queue_id, 0);
    MDB_val k = as_val(start), v;
    for (int rc = cursor.get(k, v, MDB_SET_RANGE); rc == 0; rc = cursor.get(k, v, MDB_NEXT)) {
        const auto key = as_view(k);
        if (key.size() != queue_id.size() + 8 || key.substr(0, queue_id.size()) != queue_id) return 0;
        if (!visit(as_view(v))) return 0;
    }
    return 0;
}

std::optional<Summary> find_summary(MDB_txn* txn, MDB_dbi dbi, std::string_view queue_id) {
    if (!valid_queue_id(queue_id)) return std::nullopt;
    MDB_val k = as_val(queue_id), v;
    if (mdb_get(txn, dbi, &k, &v) != 0) return std::nullopt;
    return decode_summary(as_view(v));
}

}  // namespace

// --- from a log event ----------------------------------------------------------------

std::optional<TrackingEvent> tracking_event(const boost::json::object& fields, std::string json) {
    auto text = [&](std::string_view key) -> std::string_view {
        const auto* v = fields.if_contains(key);
        return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
    };
    TrackingEvent e;
    e.queue_id = text("queue_id");
    if (e.queue_id.empty()) return std::nullopt;
    e.time = parse_rfc3339(text("time")).value_or(now_micros());
    e.message_id = strip_angle(text("message_id"));
    if (text("event") == "receive" && fields.contains("sender")) e.sender = std::string(strip_angle(text("sender")));
    if (const auto* list = fields.if_contains("recipients"); list && list->is_array())
        for (const auto& r : list->get_array())
            if (r.is_string()) e.recipients.emplace_back(r.get_string());
    if (const auto r = text("recipient"); !r.empty()) e.recipients.emplace_back(r);
    e.json = std::move(json);
    return e;
}

// --- writing -------------------------------------------------------------------------

std::error_code TrackingIndex::add(SpoolWriteTxn& wtxn, const std::vector<TrackingEvent>& events) {
    const auto& db = spool_.tracking_;
    if (!db.present) return SpoolError::io;
    MDB_txn* const txn = wtxn.txn_;
    for (const auto& e : events) {
        if (!valid_queue_id(e.queue_id)) continue;
        last_stamp_ = std::max(e.time, last_stamp_ + 1);
        if (auto ec = put(txn, db.events, event_key(e.queue_id, last_stamp_), e.json)) return ec;

        auto found = find_summary(txn, db.messages, e.queue_id);
        const bool fresh = !found;
        Summary s = found.value_or(Summary{e.time, e.time, {}, {}});
        const UnixMicros old_last = s.last;
        s.first = std::min(s.first, e.time);
        s.last = std::max(s.last, e.time);
        if (s.message_id.empty() && !e.message_id.empty()) {
            s.message_id = e.message_id;
            if (auto ec = put(txn, db.by_message_id, message_id_key(e.message_id), e.queue_id, MDB_NODUPDATA))
                return ec;
        }
        if (e.sender) {
            s.sender = *e.sender;
            const std::string key = address_key(*e.sender);
            if (key.size() <= max_key)
                if (auto ec = put(txn, db.by_sender, key, e.queue_id, MDB_NODUPDATA)) return ec;
        }
        for (const auto& r : e.recipients) {
            const std::string key = address_key(r);
            if (key.size() <= max_key)
                if (auto ec = put(txn, db.by_recipient, key, e.queue_id, MDB_NODUPDATA)) return ec;
        }
        if (!fresh && s.last != old_last)
            if (auto ec = del(txn, db.by_time, time_key(old_last, e.queue_id))) return ec;
        if (fresh || s.last != old_last)
            if (auto ec = put(txn, db.by_time, time_key(s.last, e.queue_id), {})) return ec;
        if (auto ec = put(txn, db.messages, e.queue_id, encode_summary(s))) return ec;
    }
    return {};
}

std::error_code TrackingIndex::prune(SpoolWriteTxn& wtxn, UnixMicros cutoff, std::size_t max_messages,
                                     std::size_t& removed, bool& more) {
    removed = 0;
    more = false;
    const auto& db = spool_.tracking_;
    if (!db.present) return SpoolError::io;
    MDB_txn* const txn = wtxn.txn_;
    Cursor by_time(txn, db.by_time);
    Cursor events(txn, db.events);
    if (by_time.status() || events.status()) return lmdb_error(by_time.status() ? by_time.status() : events.status());
    for (;;) {
        MDB_val k, v;
        int rc = by_time.get(k, v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) return {};
        if (rc != 0) return lmdb_error(rc);
        const std::string key(as_view(k));  // pages move under the deletes below
        if (key.size() > 8 && static_cast<UnixMicros>(get_be64(key)) >= cutoff) return {};
        if (removed == max_messages) {
            more = true;
            return {};
        }
        const std::string queue_id = key.size() > 8 ? key.substr(8) : std::string();
        // The addresses this message is indexed under come from its own events.
        std::set<std::string> senders, recipients;
        if (valid_queue_id(queue_id)) {
            for (;;) {
                bool found = false;
                for_each_event(events, queue_id, [&](std::string_view json) {
                    boost::system::error_code jec;
                    const auto parsed = boost::json::parse(json, jec);
                    if (!jec && parsed.is_object())
                        if (auto e = tracking_event(parsed.get_object(), {})) {
                            if (e->sender) senders.insert(address_key(*e->sender));
                            for (const auto& r : e->recipients) recipients.insert(address_key(r));
                        }
                    found = true;
                    return false;
                });
                if (!found) break;
                if ((rc = mdb_cursor_del(events.raw(), 0)) != 0) return lmdb_error(rc);
            }
            if (auto s = find_summary(txn, db.messages, queue_id)) {
                if (s->sender) senders.insert(address_key(*s->sender));
                const std::string_view qid = queue_id;
                if (auto ec = del(txn, db.by_message_id, message_id_key(s->message_id), &qid)) return ec;
            }
            if (auto ec = del(txn, db.messages, queue_id)) return ec;
            const std::string_view qid = queue_id;
            for (const auto& a : senders)
                if (auto ec = del(txn, db.by_sender, a, &qid)) return ec;
            for (const auto& a : recipients)
                if (auto ec = del(txn, db.by_recipient, a, &qid)) return ec;
        }
        if (auto ec = del(txn, db.by_time, key)) return ec;
        ++removed;
    }
}

// --- reading -------------------------------------------------------------------------

TrackingResult TrackingIndex::find(const TrackingQuery& q) const {
    TrackingResult result;
    const auto& db = spool_.tracking_;
    if (!db.present) {
        result.available = false;
        return result;
    }
    const std::string mid = std::string(strip_angle(q.message_id));
    const std::string sender = q.sender.empty() ? std::string() : address_key(q.sender);
    const std::string recipient = q.recipient.empty() ? std::string() : address_key(q.recipient);
    spool_.read_snapshot([&](MDB_txn* txn) {
        Cursor senders(txn, db.by_sender), recipients(txn, db.by_recipient), by_time(txn, db.by_time),
            events(txn, db.events), by_mid(txn, db.by_message_id);
        for (const Cursor* c : {&senders, &recipients, &by_time, &events, &by_mid})
            if (c->status()) throw std::runtime_error(std::string("tracking index: ") + mdb_strerror(c->status()));
        auto indexed_under = [](Cursor& c, const std::string& key, std::string_view queue_id) {
            MDB_val k = as_val(key), v = as_val(queue_id);
            return c.get(k, v, MDB_GET_BOTH) == 0;
        };
        // Every filter but the one that chose the candidate, checked by exact seeks.
        auto visit = [&](std::string_view queue_id) -> bool {
            auto s = find_summary(txn, db.messages, queue_id);
            if (!s) return true;  // an entry whose message was pruned in this snapshot
            if (!q.queue_id.empty() && queue_id != q.queue_id) return true;
            if (!mid.empty() && s->message_id != mid) return true;
            if (q.since && s->last < *q.since) return true;
            if (q.until && s->first > *q.until) return true;
            if (!sender.empty() && !indexed_under(senders, sender, queue_id)) return true;
            if (!recipient.empty() && !indexed_under(recipients, recipient, queue_id)) return true;
            result.messages.push_back(TrackedMessage{std::string(queue_id), s->message_id, s->sender, s->first,
                                                     s->last, {}});
            return q.limit == 0 || result.messages.size() <= q.limit;
        };
        // Queue ids grow with arrival time, so a key's last duplicates are its newest.
        auto visit_duplicates = [&](Cursor& c, const std::string& key) {
            MDB_val k = as_val(key), v;
            if (key.empty() || key.size() > max_key || c.get(k, v, MDB_SET_KEY) != 0) return;
            for (int rc = c.get(k, v, MDB_LAST_DUP); rc == 0; rc = c.get(k, v, MDB_PREV_DUP))
                if (!visit(std::string(as_view(v)))) return;
        };
        auto duplicates = [](Cursor& c, const std::string& key) -> std::size_t {
            MDB_val k = as_val(key), v;
            std::size_t n = 0;
            if (key.size() > max_key || c.get(k, v, MDB_SET_KEY) != 0 || mdb_cursor_count(c.raw(), &n) != 0) return 0;
            return n;
        };
        if (!q.queue_id.empty()) {
            visit(q.queue_id);
        } else if (!mid.empty()) {
            visit_duplicates(by_mid, message_id_key(mid));
        } else if (!sender.empty() && (recipient.empty() || duplicates(senders, sender) <= duplicates(recipients, recipient))) {
            visit_duplicates(senders, sender);
        } else if (!recipient.empty()) {
            visit_duplicates(recipients, recipient);
        } else {
            // Newest activity first; a message whose last event is before --since ends it.
            MDB_val k, v;
            for (int rc = by_time.get(k, v, MDB_LAST); rc == 0; rc = by_time.get(k, v, MDB_PREV)) {
                const auto key = as_view(k);
                if (key.size() <= 8) continue;
                if (q.since && static_cast<UnixMicros>(get_be64(key)) < *q.since) break;
                if (!visit(std::string(key.substr(8)))) break;
            }
        }
        if (q.limit != 0 && result.messages.size() > q.limit) {
            result.truncated = true;
            result.messages.resize(q.limit);
        }
        for (auto& m : result.messages)
            for_each_event(events, m.queue_id, [&](std::string_view json) {
                m.events.emplace_back(json);
                return true;
            });
    });
    std::sort(result.messages.begin(), result.messages.end(), [](const TrackedMessage& a, const TrackedMessage& b) {
        return a.first != b.first ? a.first < b.first : a.queue_id < b.queue_id;
    });
    return result;
}

TrackingCounts TrackingIndex::counts() const {
    TrackingCounts c;
    const auto& db = spool_.tracking_;
    if (!db.present) return c;
    spool_.read_snapshot([&](MDB_txn* txn) {
        const std::pair<unsigned, std::uint64_t*> all[] = {
            {db.events, &c.events},       {db.messages, &c.messages},         {db.by_message_id, &c.by_message_id},
            {db.by_sender, &c.by_sender}, {db.by_recipient, &c.by_recipient}, {db.by_time, &c.by_time}};
        for (const auto& [dbi, out] : all) {
            MDB_stat st;
            if (mdb_stat(txn, dbi, &st) == 0) *out = st.ms_entries;
        }
    });
    return c;
}

// --- the daemon's feed ---------------------------------------------------------------

TrackingFeed::TrackingFeed(TrackingIndex& index, SpoolWriter& writer, std::chrono::milliseconds retention)
    : index_(index), writer_(writer), retention_(retention) {
    thread_ = std::thread([this] { run(); });
}

TrackingFeed::~TrackingFeed() { stop(); }

std::chrono::milliseconds TrackingFeed::prune_interval(std::chrono::milliseconds retention) {
    return std::clamp<std::chrono::milliseconds>(retention / 4, std::chrono::seconds(1), std::chrono::minutes(1));
}

void TrackingFeed::accept(const LogEvent& event, std::string_view json) {
    auto e = tracking_event(event.fields(), std::string(json));
    if (!e) return;
    std::lock_guard lock(mutex_);
    if (!stopping_) buffer_.push_back(std::move(*e));
}

void TrackingFeed::run() {
    const auto interval = prune_interval(retention_);
    auto next_prune = std::chrono::steady_clock::now() + interval;
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, flush_interval, [this] { return stopping_; })) {
        std::vector<TrackingEvent> events;
        events.swap(buffer_);
        const auto now = std::chrono::steady_clock::now();
        const bool prune_now = !prune_running_ && (prune_more_ || now >= next_prune);
        if (prune_now) {
            prune_running_ = true;
            next_prune = now + interval;
        }
        lock.unlock();
        if (!events.empty()) submit_events(std::move(events), false);
        if (prune_now) submit_prune();
        lock.lock();
    }
}

void TrackingFeed::submit_events(std::vector<TrackingEvent> events, bool wait) {
    auto batch = std::make_shared<const std::vector<TrackingEvent>>(std::move(events));
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    writer_.submit([this, batch](SpoolWriteTxn& txn) { return index_.add(txn, *batch); },
                   [this, done](std::error_code ec) {
                       report("write", ec);
                       done->set_value();
                   });
    if (wait) finished.wait();
}

void TrackingFeed::submit_prune() {
    struct Outcome {
        std::size_t removed = 0;
        bool more = false;
    };
    auto outcome = std::make_shared<Outcome>();
    const UnixMicros cutoff =
        now_micros() - std::chrono::duration_cast<std::chrono::microseconds>(retention_).count();
    writer_.submit(
        [this, outcome, cutoff](SpoolWriteTxn& txn) {
            return index_.prune(txn, cutoff, prune_batch, outcome->removed, outcome->more);
        },
        [this, outcome](std::error_code ec) {
            report("prune", ec);
            std::lock_guard lock(mutex_);
            prune_running_ = false;
            prune_more_ = !ec && outcome->more;
        });
}

void TrackingFeed::report(const char* what, std::error_code ec) {
    if (ec == SpoolError::closed) return;  // shutting down
    std::lock_guard lock(mutex_);
    // Once per change, not once per batch: a full spool would otherwise flood stderr.
    if (ec && !failing_)
        std::cerr << "edgerelayd: tracking index: cannot " << what << ": " << ec.message()
                  << " (the JSON log still has every event)\n";
    else if (!ec && failing_)
        std::cerr << "edgerelayd: tracking index: writing again\n";
    failing_ = static_cast<bool>(ec);
}

void TrackingFeed::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::vector<TrackingEvent> rest;
    {
        std::lock_guard lock(mutex_);
        rest.swap(buffer_);
    }
    if (!rest.empty()) submit_events(std::move(rest), true);
}

// --- times ---------------------------------------------------------------------------

std::optional<UnixMicros> parse_rfc3339(std::string_view s) {
    std::size_t pos = 0;
    auto number = [&](std::size_t digits, int& out) {
        if (pos + digits > s.size()) return false;
        const auto* begin = s.data() + pos;
        auto [end, ec] = std::from_chars(begin, begin + digits, out);
        if (ec != std::errc() || end != begin + digits) return false;
        pos += digits;
        return true;
    };
    auto literal = [&](std::string_view chars) {
        if (pos < s.size() && chars.find(s[pos]) != std::string_view::npos) return ++pos, true;
        return false;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!number(4, y) || !literal("-") || !number(2, mo) || !literal("-") || !number(2, d)) return std::nullopt;
    using namespace std::chrono;
    const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
    if (!ymd.ok()) return std::nullopt;
    std::int64_t micros = 0;
    if (pos < s.size()) {
        if (!literal("Tt ") || !number(2, h) || !literal(":") || !number(2, mi)) return std::nullopt;
        if (literal(":") && !number(2, sec)) return std::nullopt;
        if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
        if (literal(".,")) {
            std::int64_t scale = 100000;
            const std::size_t start = pos;
            for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, scale /= 10) micros += (s[pos] - '0') * scale;
            if (pos == start) return std::nullopt;
        }
        if (literal("Zz")) {
        } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
            const int sign = s[pos++] == '-' ? -1 : 1;
            int oh = 0, om = 0;
            if (!number(2, oh) || !literal(":") || !number(2, om) || oh > 23 || om > 59) return std::nullopt;
            micros -= sign * (std::int64_t(oh) * 3600 + om * 60) * 1000000;
        }
        if (pos != s.size()) return std::nullopt;
    }
    const auto day_start = sys_days(ymd).time_since_epoch();
    return duration_cast<microseconds>(day_start + hours(h) + minutes(mi) + seconds(sec)).count() + micros;
}

std::optional<UnixMicros> parse_log_time(std::string_view text, UnixMicros now) {
    if (auto t = parse_rfc3339(text)) return t;
    if (auto ago = conf::parse_duration(text)) return now - std::chrono::duration_cast<std::chrono::microseconds>(*ago).count();
    return std::nullopt;
}

// --- output --------------------------------------------------------------------------

namespace {

std::string value_text(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) return {};
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_bool()) return v->get_bool() ? "yes" : "no";
    if (v->is_array()) {
        std::string out;
        for (const auto& x : v->get_array()) out += (out.empty() ? "<" : ", <") +
                                                    std::string(x.is_string() ? x.get_string() : "") + ">";
        return out;
    }
    return boost::json::serialize(*v);
}

std::string seconds_text(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || !(v->is_double() || v->is_int64() || v->is_uint64())) return {};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fs", v->to_number<double>());
    return buf;
}

}  // namespace

std::string tracking_event_line(const boost::json::object& e) {
    const std::string kind = value_text(e, "event");
    std::string line = value_text(e, "time") + " " + value_text(e, "queue_id") + " " + kind;
    auto add = [&](std::string_view label, const std::string& value) {
        if (!value.empty()) (((line += ' ') += label) += value);
    };
    if (kind == "receive") {
        line += " from <" + value_text(e, "sender") + ">";
        add("to ", value_text(e, "recipients"));
        if (const auto ip = value_text(e, "client_ip"); !ip.empty())
            add("client ", ip + (e.contains("helo") ? " helo " + value_text(e, "helo") : std::string()));
        add("tls=", value_text(e, "tls"));
        add("size ", value_text(e, "size"));
        if (const auto dsn = value_text(e, "dsn_for"); !dsn.empty())
            line += " (" + value_text(e, "dsn_kind") + " DSN about " + dsn + ")";
        return line;
    }
    if (e.contains("recipient")) {
        line += " <" + value_text(e, "recipient") + ">";
        add("via ", value_text(e, "next_hop"));
        if (const auto ip = value_text(e, "ip"); !ip.empty())
            line += " " + value_text(e, "mx_host") + "[" + ip + "]:" + value_text(e, "port");
        add("tls=", value_text(e, "tls"));
        if (const auto code = value_text(e, "reply_code"); !code.empty() && code != "0") line += " " + code;
        add("", value_text(e, "enhanced_code"));
        add("", value_text(e, "reply_text"));
        const auto attempt = value_text(e, "attempt"), delay = seconds_text(e, "delay");
        if (!attempt.empty() || !delay.empty())
            line += " (" + (attempt.empty() ? delay : "attempt " + attempt + (delay.empty() ? "" : ", " + delay)) + ")";
        add("dsn ", value_text(e, "dsn_queue_id"));
        return line;
    }
    // Operator actions and anything newer: the remaining fields as key=value.
    for (const auto& field : e) {
        const std::string_view key = field.key();
        if (key == "event" || key == "time" || key == "queue_id" || key == "message_id") continue;
        add(std::string(key) + "=", value_text(e, key));
    }
    return line;
}

std::string tracking_text(const std::vector<TrackedMessage>& messages) {
    std::string out;
    for (const auto& m : messages) {
        if (!out.empty()) out += "\n";
        out += m.queue_id + " message-id=<" + m.message_id + "> from=" +
               (m.sender ? "<" + *m.sender + ">" : std::string("(unknown)")) + "\n";
        for (const auto& json : m.events) {
            boost::system::error_code ec;
            const auto v = boost::json::parse(json, ec);
            out += (!ec && v.is_object() ? tracking_event_line(v.get_object()) : json) + "\n";
        }
    }
    return out;
}

std::string tracking_json(const std::vector<TrackedMessage>& messages) {
    // The events are spliced in as logged, not re-encoded.
    std::string out = "{\"events\":[";
    bool first = true;
    for (const auto& m : messages)
        for (const auto& json : m.events) {
            if (!first) out += ',';
            out += json;
            first = false;
        }
    return out + "]}\n";
}

}  // namespace edgerelay::queue
