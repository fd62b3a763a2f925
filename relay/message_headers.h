// A quick read of a message's header section, without I/O: where it ends, how many
// Received: fields it has (mail loops), and its Message-ID.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace edgerelay::relay {

struct HeaderScan {
    std::size_t header_end = 0;   // offset just after the blank line ending the header
                                  // section (or of the point where the body starts / the
                                  // end of the content when there is no blank line)
    bool has_blank_line = false;  // the content has a header/body separator
    unsigned received_count = 0;  // Received: fields (case-insensitive names)
    bool has_message_id = false;
    std::string message_id;       // unfolded value, without the angle brackets
};

HeaderScan scan_headers(std::string_view content);

}  // namespace edgerelay::relay
