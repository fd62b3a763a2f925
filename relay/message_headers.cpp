// A single pass over the header section (RFC 5322 2.2, 3.6): where it ends, the
// Received: count that detects mail loops (RFC 5321 6.3), and the first Message-ID.
// Lines end at LF with an optional CR before it, so this also reads content that did
// not come through DataReader.
#include "relay/message_headers.h"

#include "relay/address.h"

namespace edgerelay::relay {
namespace {

enum class Field { other, received, message_id };

bool is_wsp(char ch) { return ch == ' ' || ch == '\t'; }

// field-name = 1*ftext, ftext = %d33-57 / %d59-126; obs-optional (RFC 5322 4.5.8)
// allows white space before the colon. Returns the name, or empty when the line is no
// header field.
std::string_view field_name(std::string_view line, std::size_t& value_start) {
    std::size_t i = 0;
    while (i < line.size()) {
        const auto ch = static_cast<unsigned char>(line[i]);
        if (ch < 33 || ch > 126 || ch == ':') break;
        ++i;
    }
    const std::size_t name_end = i;
    while (i < line.size() && is_wsp(line[i])) ++i;
    if (name_end == 0 || i == line.size() || line[i] != ':') return {};
    value_start = i + 1;
    return line.substr(0, name_end);
}

// "<id@host>" -> "id@host": the msg-id between its angle brackets; without brackets
// the trimmed value as it stands.
std::string message_id_of(std::string_view value) {
    while (!value.empty() && is_wsp(value.front())) value.remove_prefix(1);
    while (!value.empty() && is_wsp(value.back())) value.remove_suffix(1);
    const std::size_t open = value.find('<');
    if (open != std::string_view::npos) {
        const std::size_t close = value.find('>', open + 1);
        if (close != std::string_view::npos) return std::string(value.substr(open + 1, close - open - 1));
    }
    return std::string(value);
}

}  // namespace

HeaderScan scan_headers(std::string_view content) {
    HeaderScan scan;
    Field field = Field::other;
    bool in_field = false;
    std::string unfolded;  // the current Message-ID value, continuation lines joined

    auto finish_field = [&] {
        if (field == Field::message_id && !scan.has_message_id) {
            scan.has_message_id = true;  // present, even if empty: never add a second
            scan.message_id = message_id_of(unfolded);
        }
        field = Field::other;
        in_field = false;
    };

    std::size_t pos = 0;
    while (pos < content.size()) {
        const std::size_t lf = content.find('\n', pos);
        const std::size_t next = lf == std::string_view::npos ? content.size() : lf + 1;
        std::string_view line = content.substr(pos, next - pos);
        if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

        if (line.empty()) {
            finish_field();
            scan.has_blank_line = true;
            scan.header_end = next;
            return scan;
        }
        if (is_wsp(line.front())) {  // folded continuation (RFC 5322 2.2.3)
            if (!in_field) break;    // nothing to continue: body text
            if (field == Field::message_id) unfolded += line;
        } else {
            std::size_t value_start = 0;
            const std::string_view name = field_name(line, value_start);
            if (name.empty()) break;  // not a header field: the body starts here
            finish_field();
            in_field = true;
            if (ascii_iequals(name, "Received")) {
                field = Field::received;
                ++scan.received_count;
            } else if (ascii_iequals(name, "Message-ID")) {
                field = Field::message_id;
                unfolded.assign(line.substr(value_start));
            }
        }
        pos = next;
    }
    finish_field();
    scan.header_end = pos;
    return scan;
}

}  // namespace edgerelay::relay
