// The envelope record as stored in the spool: a compact, versioned binary encoding
// (version byte, then LEB128 integers and length-prefixed strings), and the time and
// state names shared by the log, the CLI and the admin API.
//
// decode_envelope reads records from disk that may be damaged or written by a newer
// version: it checks every length against the bytes left, never reads past the end,
// and answers nullopt instead of guessing.
#include "queue/envelope.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <limits>

namespace edgerelay::queue {

UnixMicros now_micros() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_rfc3339(UnixMicros t) {
    using namespace std::chrono;
    // Floor, not truncate, so times before 1970 still print a valid calendar date.
    const sys_time<microseconds> tp{microseconds{t}};
    const auto day = floor<days>(tp);
    const year_month_day ymd{day};
    const hh_mm_ss hms{floor<milliseconds>(tp - day)};
    char buf[48];
    const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                                static_cast<int>(hms.minutes().count()),
                                static_cast<int>(hms.seconds().count()),
                                static_cast<int>(hms.subseconds().count()));
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

// Fixed tables rather than strftime, so the process locale cannot change day names.
std::string format_rfc5322(UnixMicros t) {
    using namespace std::chrono;
    static constexpr std::array<const char*, 7> weekdays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const sys_time<microseconds> tp{microseconds{t}};
    const auto day = floor<days>(tp);
    const year_month_day ymd{day};
    const hh_mm_ss hms{floor<seconds>(tp - day)};
    char buf[64];
    const int n = std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d +0000",
                                weekdays[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                                months[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                                static_cast<int>(hms.seconds().count()));
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

namespace {

constexpr std::array<std::string_view, 3> message_state_names{"ready", "deferred", "held"};
constexpr std::array<std::string_view, 4> recipient_state_names{"pending", "delivered", "deferred",
                                                                "bounced"};

// Record layout, version 1 (all integers unsigned LEB128, signed ones zigzagged first;
// strings are a length then the bytes):
//   u8 version=1, queue_id, arrival, sender, n_recipients,
//     n x { address, u8 state, attempts, last_reply, last_attempt },
//   message_id, client_ip, helo, u8 flags, size, u8 state, attempts, next_attempt,
//   last_reply
constexpr std::uint8_t encoding_version = 1;

enum Flag : std::uint8_t {
    flag_tls = 1u << 0,
    flag_smtputf8 = 1u << 1,
    flag_eight_bit_mime = 1u << 2,
    flag_delay_warning_sent = 1u << 3,
    flag_is_bounce = 1u << 4,
};
constexpr std::uint8_t known_flags =
    flag_tls | flag_smtputf8 | flag_eight_bit_mime | flag_delay_warning_sent | flag_is_bounce;

// The smallest encoded recipient: empty address, state, attempts, empty reply, time.
constexpr std::size_t min_recipient_bytes = 5;

std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

void put_varint(std::string& out, std::uint64_t v) {
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out.append(buf, n);
}

void put_string(std::string& out, std::string_view s) {
    put_varint(out, s.size());
    out.append(s);
}

void put_byte(std::string& out, std::uint8_t b) { out.push_back(static_cast<char>(b)); }

// A bounds-checked reader: once a read fails, every later read fails too, so the
// decoder checks ok() once at the end instead of after every field.
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool at_end() const { return pos_ == in_.size(); }
    std::size_t left() const { return in_.size() - pos_; }

    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (unsigned shift = 0; ok_ && shift < 64; shift += 7) {
            if (pos_ == in_.size()) break;
            const auto b = static_cast<std::uint8_t>(in_[pos_++]);
            // The tenth byte may carry only the top bit of a 64-bit value.
            if (shift == 63 && b > 1) break;
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        ok_ = false;
        return 0;
    }
    std::int64_t signed_varint() { return unzigzag(varint()); }
    std::uint32_t u32() {
        const auto v = varint();
        if (v > std::numeric_limits<std::uint32_t>::max()) ok_ = false;
        return ok_ ? static_cast<std::uint32_t>(v) : 0;
    }
    std::uint8_t byte() {
        if (!ok_ || pos_ == in_.size()) {
            ok_ = false;
            return 0;
        }
        return static_cast<std::uint8_t>(in_[pos_++]);
    }
    std::string string() {
        const auto n = varint();
        if (!ok_ || n > left()) {
            ok_ = false;
            return {};
        }
        std::string s(in_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    void fail() { ok_ = false; }

private:
    std::string_view in_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

}  // namespace

std::string_view to_string(MessageState s) {
    const auto i = static_cast<std::size_t>(s);
    return i < message_state_names.size() ? message_state_names[i] : "unknown";
}

std::string_view to_string(RecipientState s) {
    const auto i = static_cast<std::size_t>(s);
    return i < recipient_state_names.size() ? recipient_state_names[i] : "unknown";
}

std::optional<MessageState> message_state_from_string(std::string_view s) {
    for (std::size_t i = 0; i < message_state_names.size(); ++i)
        if (message_state_names[i] == s) return static_cast<MessageState>(i);
    return std::nullopt;
}

void encode_envelope(const Envelope& e, std::string& out) {
    out.clear();
    std::size_t estimate = 64 + e.queue_id.size() + e.sender.size() + e.message_id.size() +
                           e.client_ip.size() + e.helo.size() + e.last_reply.size();
    for (const auto& r : e.recipients) estimate += 24 + r.address.size() + r.last_reply.size();
    out.reserve(estimate);

    put_byte(out, encoding_version);
    put_string(out, e.queue_id);
    put_varint(out, zigzag(e.arrival));
    put_string(out, e.sender);
    put_varint(out, e.recipients.size());
    for (const auto& r : e.recipients) {
        put_string(out, r.address);
        put_byte(out, static_cast<std::uint8_t>(r.state));
        put_varint(out, r.attempts);
        put_string(out, r.last_reply);
        put_varint(out, zigzag(r.last_attempt));
    }
    put_string(out, e.message_id);
    put_string(out, e.client_ip);
    put_string(out, e.helo);
    std::uint8_t flags = 0;
    if (e.tls) flags |= flag_tls;
    if (e.smtputf8) flags |= flag_smtputf8;
    if (e.eight_bit_mime) flags |= flag_eight_bit_mime;
    if (e.delay_warning_sent) flags |= flag_delay_warning_sent;
    if (e.is_bounce) flags |= flag_is_bounce;
    put_byte(out, flags);
    put_varint(out, e.size);
    put_byte(out, static_cast<std::uint8_t>(e.state));
    put_varint(out, e.attempts);
    put_varint(out, zigzag(e.next_attempt));
    put_string(out, e.last_reply);
}

std::string encode_envelope(const Envelope& e) {
    std::string out;
    encode_envelope(e, out);
    return out;
}

std::optional<Envelope> decode_envelope(std::string_view bytes) {
    Reader in(bytes);
    if (in.byte() != encoding_version) return std::nullopt;

    Envelope e;
    e.queue_id = in.string();
    e.arrival = in.signed_varint();
    e.sender = in.string();
    const auto n = in.varint();
    // Every recipient takes at least a few bytes: a count beyond what is left is damage,
    // and must not turn into a huge allocation.
    if (!in.ok() || n > in.left() / min_recipient_bytes) return std::nullopt;
    e.recipients.resize(n);
    for (auto& r : e.recipients) {
        r.address = in.string();
        const auto state = in.byte();
        if (state >= recipient_state_names.size()) in.fail();
        r.state = static_cast<RecipientState>(state);
        r.attempts = in.u32();
        r.last_reply = in.string();
        r.last_attempt = in.signed_varint();
        if (!in.ok()) return std::nullopt;
    }
    e.message_id = in.string();
    e.client_ip = in.string();
    e.helo = in.string();
    const auto flags = in.byte();
    if ((flags & ~known_flags) != 0) in.fail();
    e.tls = (flags & flag_tls) != 0;
    e.smtputf8 = (flags & flag_smtputf8) != 0;
    e.eight_bit_mime = (flags & flag_eight_bit_mime) != 0;
    e.delay_warning_sent = (flags & flag_delay_warning_sent) != 0;
    e.is_bounce = (flags & flag_is_bounce) != 0;
    e.size = in.varint();
    const auto state = in.byte();
    if (state >= message_state_names.size()) in.fail();
    e.state = static_cast<MessageState>(state);
    e.attempts = in.u32();
    e.next_attempt = in.signed_varint();
    e.last_reply = in.string();
    // Trailing bytes mean the record is not what this version wrote.
    if (!in.ok() || !in.at_end()) return std::nullopt;
    return e;
}

}  // namespace edgerelay::queue
