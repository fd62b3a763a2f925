// The "edgerelay.spool" error category: what a spool operation's error_code means.
#include "queue/spool_error.h"

#include <string>

namespace edgerelay::queue {

namespace {

class SpoolCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "edgerelay.spool"; }
    std::string message(int ev) const override {
        switch (static_cast<SpoolError>(ev)) {
        case SpoolError::ok: return "success";
        case SpoolError::full: return "spool full";
        case SpoolError::io: return "spool I/O error";
        case SpoolError::not_found: return "no such message in the spool";
        case SpoolError::corrupt: return "spool record does not decode";
        case SpoolError::closed: return "spool writer is shut down";
        }
        return "unknown spool error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& spool_category() {
    static const SpoolCategory category;
    return category;
}

std::error_code make_error_code(SpoolError e) { return {static_cast<int>(e), spool_category()}; }

}  // namespace edgerelay::queue
