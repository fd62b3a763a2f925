// The LMDB spool: the contract between intake and delivery. One LMDB environment
// (a directory) with named databases:
//   envelopes  queue id -> encoded Envelope   (small; listed and scheduled from)
//   contents   queue id -> message bytes      (read only to deliver or show)
//   meta       key -> value                   (schema version, route controls)
//   track_*    the tracking index of log events (queue/tracking_index.h)
// Readers (edgerelayctl) open it read-only while the daemon writes: LMDB gives each
// read transaction a consistent snapshot.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "queue/envelope.h"
#include "queue/spool_error.h"

typedef struct MDB_env MDB_env;
typedef struct MDB_txn MDB_txn;

namespace edgerelay::queue {

class Spool;

// A write transaction handed to SpoolWriter operations. Its changes are committed
// (and synced) together with the rest of the batch, or not at all.
class SpoolWriteTxn {
public:
    std::error_code put_message(const Envelope& env, std::string_view content);
    std::error_code put_envelope(const Envelope& env);  // update state only
    std::error_code remove_message(std::string_view queue_id);
    std::optional<Envelope> find_envelope(std::string_view queue_id);
    // Small settings kept beside the schema version (route controls, ...); an empty
    // value removes the key.
    std::error_code put_meta(std::string_view key, std::string_view value);

private:
    friend class Spool;
    friend class SpoolWriter;
    friend class TrackingIndex;
    SpoolWriteTxn(Spool& spool, MDB_txn* txn) : spool_(spool), txn_(txn) {}
    Spool& spool_;
    MDB_txn* txn_;
};

struct SpoolStats {
    std::uint64_t messages = 0;
    std::uint64_t map_size = 0;   // configured maximum, bytes
    std::uint64_t used_bytes = 0; // pages in use * page size
};

class Spool {
public:
    enum class Mode { read_write, read_only };

    // Creates the directory (read_write) and opens the environment. Throws
    // std::runtime_error with a message naming the path on failure (startup only).
    Spool(const std::string& path, std::uint64_t map_size, Mode mode);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    const std::string& path() const { return path_; }

    // One synchronous write transaction, committed durably (synced) before it returns. Used by
    // SpoolWriter's thread, by tests and by offline tools. The callback's error aborts.
    std::error_code write(const std::function<std::error_code(SpoolWriteTxn&)>& fn);

    // Reads, each in its own read-only snapshot.
    std::optional<Envelope> find_envelope(std::string_view queue_id) const;
    std::optional<std::string> find_content(std::string_view queue_id) const;
    // Visits every envelope in queue id (arrival) order; stop by returning false.
    void for_each_envelope(const std::function<bool(const Envelope&)>& visit) const;
    // Visits every meta key starting with `prefix`, in key order.
    void for_each_meta(std::string_view prefix,
                       const std::function<void(std::string_view key, std::string_view value)>& visit) const;
    SpoolStats stats() const;

private:
    friend class SpoolWriteTxn;
    friend class SpoolWriter;
    friend class SpoolHeadroom;
    friend class TrackingIndex;
    // The tracking index's databases, opened (read_write: created) with the others. A
    // read-only Spool of a spool no edgerelayd with the index has written lacks them.
    struct TrackingDbs {
        unsigned events = 0, messages = 0, by_message_id = 0, by_sender = 0, by_recipient = 0, by_time = 0;
        bool present = false;
    };
    // fn runs inside one read-only snapshot (for TrackingIndex's lookups).
    void read_snapshot(const std::function<void(MDB_txn*)>& fn) const;
    // An LMDB return code as a SpoolError (MDB_MAP_FULL/MDB_TXN_FULL -> full, ...).
    static std::error_code error_from_lmdb(int rc);
    std::string path_;
    Mode mode_;
    MDB_env* env_ = nullptr;
    unsigned envelopes_dbi_ = 0;
    unsigned contents_dbi_ = 0;
    unsigned meta_dbi_ = 0;
    TrackingDbs tracking_;
};

}  // namespace edgerelay::queue
