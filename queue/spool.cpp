// The LMDB spool: opening the environment and its named databases, the write
// transaction operations handed to SpoolWriter, and the snapshot reads used by the
// scheduler, the admin API and edgerelayctl.
//
// Durability: the environment is opened without MDB_NOSYNC or MDB_NOMETASYNC, so
// mdb_txn_commit returns only after the data pages and then the meta page are on disk.
// SpoolWriter calls a completion (a 250) after the commit returns.
#include "queue/spool.h"

#include <lmdb.h>

#include <filesystem>
#include <stdexcept>
#include <tuple>

namespace edgerelay::queue {

namespace {

// envelopes, contents, meta and the tracking index's six, with room to grow.
constexpr unsigned max_dbs = 16;
// Sessions, the scheduler and the admin API each hold short read transactions at once
// (MDB_NOTLS: one slot per live transaction, not per thread).
constexpr unsigned max_readers = 1024;
constexpr std::string_view schema_key = "schema_version";
constexpr std::string_view schema_version = "1";

MDB_val as_val(std::string_view s) {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view as_view(const MDB_val& v) {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// A key LMDB would refuse (empty, or over its 511-byte limit) is no queue id of ours.
bool valid_key(std::string_view k) { return !k.empty() && k.size() <= 511; }

[[noreturn]] void fail_open(const std::string& path, const std::string& what, int rc) {
    throw std::runtime_error("spool " + path + ": " + what + ": " + mdb_strerror(rc));
}

// One read-only snapshot, aborted on scope exit. Read failures are not a client's
// fault and not expected (reader table full, a damaged file): they throw.
class ReadTxn {
public:
    explicit ReadTxn(MDB_env* env, const std::string& path) {
        int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_);
        if (rc == MDB_MAP_RESIZED) {
            // The writer grew the map since we opened it: adopt its size and retry.
            if (mdb_env_set_mapsize(env, 0) == 0) rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_);
        }
        if (rc != 0) {
            txn_ = nullptr;
            throw std::runtime_error("spool " + path + ": cannot begin read transaction: " + mdb_strerror(rc));
        }
    }
    ~ReadTxn() {
        if (txn_) mdb_txn_abort(txn_);
    }
    ReadTxn(const ReadTxn&) = delete;
    ReadTxn& operator=(const ReadTxn&) = delete;
    MDB_txn* get() const { return txn_; }

private:
    MDB_txn* txn_ = nullptr;
};

std::optional<Envelope> get_envelope(MDB_txn* txn, MDB_dbi dbi, std::string_view queue_id) {
    if (!valid_key(queue_id)) return std::nullopt;
    MDB_val key = as_val(queue_id);
    MDB_val val;
    if (mdb_get(txn, dbi, &key, &val) != 0) return std::nullopt;
    return decode_envelope(as_view(val));
}

}  // namespace

std::error_code Spool::error_from_lmdb(int rc) {
    switch (rc) {
    case 0: return {};
    case MDB_NOTFOUND: return SpoolError::not_found;
    // The map is full, or this one transaction cannot hold more dirty pages: either
    // way the message does not fit now; it is a 452, not a broken disk.
    case MDB_MAP_FULL:
    case MDB_TXN_FULL: return SpoolError::full;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND: return SpoolError::corrupt;
    default: return SpoolError::io;
    }
}

Spool::Spool(const std::string& path, std::uint64_t map_size, Mode mode) : path_(path), mode_(mode) {
    namespace fs = std::filesystem;
    std::error_code fs_ec;
    if (mode == Mode::read_write) {
        fs::create_directories(path, fs_ec);
        if (fs_ec) throw std::runtime_error("spool " + path + ": cannot create directory: " + fs_ec.message());
    } else if (!fs::exists(fs::path(path) / "data.mdb", fs_ec)) {
        throw std::runtime_error("spool " + path +
                                 ": no spool there (no data.mdb); has edgerelayd ever run with this path?");
    }

    int rc = mdb_env_create(&env_);
    if (rc != 0) fail_open(path, "cannot create LMDB environment", rc);
    // From here on the destructor does not run if we throw: close env_ ourselves.
    try {
        if ((rc = mdb_env_set_maxdbs(env_, max_dbs)) != 0) fail_open(path, "mdb_env_set_maxdbs", rc);
        if ((rc = mdb_env_set_maxreaders(env_, max_readers)) != 0) fail_open(path, "mdb_env_set_maxreaders", rc);
        // A reader takes the map size the writer recorded, so it can map all its data.
        if (mode == Mode::read_write && (rc = mdb_env_set_mapsize(env_, map_size)) != 0)
            fail_open(path, "cannot set map size", rc);
        // Every commit syncs its meta page too. MDB_NOMETASYNC (the next commit's sync
        // carries the meta page) saved a flush per commit but made each 250 wait for the
        // next commit as well, and since the commit delay the intake benchmark was faster
        // without it (docs/performance.md, "The meta page synced again").
        const unsigned flags = MDB_NOTLS | (mode == Mode::read_only ? MDB_RDONLY : 0u);
        if ((rc = mdb_env_open(env_, path.c_str(), flags, 0640)) != 0) fail_open(path, "cannot open", rc);

        MDB_txn* txn = nullptr;
        if (mode == Mode::read_write) {
            // Readers that died (a killed edgerelayctl) would pin old pages forever.
            int dead = 0;
            mdb_reader_check(env_, &dead);
            if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn)) != 0) fail_open(path, "cannot begin transaction", rc);
        } else if ((rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn)) != 0) {
            fail_open(path, "cannot begin read transaction", rc);
        }
        const unsigned db_flags = mode == Mode::read_write ? MDB_CREATE : 0u;
        const std::pair<const char*, unsigned*> dbs[] = {
            {"envelopes", &envelopes_dbi_}, {"contents", &contents_dbi_}, {"meta", &meta_dbi_}};
        for (const auto& [name, dbi] : dbs) {
            MDB_dbi handle = 0;
            if ((rc = mdb_dbi_open(txn, name, db_flags, &handle)) != 0) {
                mdb_txn_abort(txn);
                fail_open(path, std::string("cannot open database \"") + name + "\"", rc);
            }
            *dbi = handle;
        }
        // The tracking index: all six or none (a spool from before the index, read-only).
        const std::tuple<const char*, unsigned*, unsigned> tracking[] = {
            {"track_events", &tracking_.events, 0u},
            {"track_messages", &tracking_.messages, 0u},
            {"track_by_message_id", &tracking_.by_message_id, unsigned(MDB_DUPSORT)},
            {"track_by_sender", &tracking_.by_sender, unsigned(MDB_DUPSORT)},
            {"track_by_recipient", &tracking_.by_recipient, unsigned(MDB_DUPSORT)},
            {"track_by_time", &tracking_.by_time, 0u}};
        tracking_.present = true;
        for (const auto& [name, dbi, flags] : tracking) {
            MDB_dbi handle = 0;
            rc = mdb_dbi_open(txn, name, db_flags | flags, &handle);
            if (rc == MDB_NOTFOUND && mode == Mode::read_only) {
                tracking_.present = false;
                continue;
            }
            if (rc != 0) {
                mdb_txn_abort(txn);
                fail_open(path, std::string("cannot open database \"") + name + "\"", rc);
            }
            *dbi = handle;
        }
        MDB_val key = as_val(schema_key);
        MDB_val val;
        rc = mdb_get(txn, meta_dbi_, &key, &val);
        if (rc == MDB_NOTFOUND && mode == Mode::read_write) {
            val = as_val(schema_version);
            rc = mdb_put(txn, meta_dbi_, &key, &val, 0);
        } else if (rc == 0 && as_view(val) != schema_version) {
            mdb_txn_abort(txn);
            throw std::runtime_error("spool " + path + ": schema version " + std::string(as_view(val)) +
                                     " is not the one this program knows (" + std::string(schema_version) + ")");
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            fail_open(path, "cannot read schema version", rc);
        }
        // Committing (even the read-only one) keeps the database handles open.
        if ((rc = mdb_txn_commit(txn)) != 0) fail_open(path, "cannot commit", rc);
    } catch (...) {
        mdb_env_close(env_);
        env_ = nullptr;
        throw;
    }
}

Spool::~Spool() {
    if (env_) mdb_env_close(env_);
}

std::error_code Spool::write(const std::function<std::error_code(SpoolWriteTxn&)>& fn) {
    if (mode_ == Mode::read_only) return SpoolError::io;
    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(env_, nullptr, 0, &txn); rc != 0) return error_from_lmdb(rc);
    SpoolWriteTxn wtxn(*this, txn);
    std::error_code ec;
    try {
        ec = fn(wtxn);
    } catch (...) {
        mdb_txn_abort(txn);
        throw;
    }
    if (ec) {
        mdb_txn_abort(txn);
        return ec;
    }
    // The commit frees txn, even on failure; it returns once the transaction is durable.
    return error_from_lmdb(mdb_txn_commit(txn));
}

void Spool::read_snapshot(const std::function<void(MDB_txn*)>& fn) const {
    ReadTxn txn(env_, path_);
    fn(txn.get());
}

std::optional<Envelope> Spool::find_envelope(std::string_view queue_id) const {
    ReadTxn txn(env_, path_);
    return get_envelope(txn.get(), envelopes_dbi_, queue_id);
}

std::optional<std::string> Spool::find_content(std::string_view queue_id) const {
    if (!valid_key(queue_id)) return std::nullopt;
    ReadTxn txn(env_, path_);
    MDB_val key = as_val(queue_id);
    MDB_val val;
    if (mdb_get(txn.get(), contents_dbi_, &key, &val) != 0) return std::nullopt;
    return std::string(as_view(val));
}

void Spool::for_each_envelope(const std::function<bool(const Envelope&)>& visit) const {
    ReadTxn txn(env_, path_);
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), envelopes_dbi_, &cursor); rc != 0)
        throw std::runtime_error("spool " + path_ + ": cannot open cursor: " + mdb_strerror(rc));
    struct CursorCloser {
        MDB_cursor* c;
        ~CursorCloser() { mdb_cursor_close(c); }
    } closer{cursor};
    MDB_val key, val;
    for (int rc = mdb_cursor_get(cursor, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &key, &val, MDB_NEXT)) {
        // A record that does not decode is skipped here; find_envelope reports it as absent.
        auto env = decode_envelope(as_view(val));
        if (env && !visit(*env)) break;
    }
}

void Spool::for_each_meta(std::string_view prefix,
                          const std::function<void(std::string_view, std::string_view)>& visit) const {
    ReadTxn txn(env_, path_);
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), meta_dbi_, &cursor); rc != 0)
        throw std::runtime_error("spool " + path_ + ": cannot open cursor: " + mdb_strerror(rc));
    struct CursorCloser {
        MDB_cursor* c;
        ~CursorCloser() { mdb_cursor_close(c); }
    } closer{cursor};
    MDB_val key = as_val(prefix.empty() ? std::string_view("\0", 1) : prefix), val;
    for (int rc = mdb_cursor_get(cursor, &key, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cursor, &key, &val, MDB_NEXT)) {
        const auto k = as_view(key);
        if (k.substr(0, prefix.size()) != prefix) break;
        visit(k, as_view(val));
    }
}

SpoolStats Spool::stats() const {
    SpoolStats s;
    {
        ReadTxn txn(env_, path_);
        MDB_stat st;
        if (mdb_stat(txn.get(), envelopes_dbi_, &st) == 0) s.messages = st.ms_entries;
    }
    MDB_envinfo info;
    MDB_stat est;
    if (mdb_env_info(env_, &info) == 0 && mdb_env_stat(env_, &est) == 0) {
        s.map_size = info.me_mapsize;
        s.used_bytes = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * est.ms_psize;
    }
    return s;
}

// --- SpoolWriteTxn -------------------------------------------------------------------

std::error_code SpoolWriteTxn::put_message(const Envelope& env, std::string_view content) {
    if (!valid_key(env.queue_id)) return SpoolError::io;
    // One encoding buffer per writing thread: the writer thread reuses its capacity
    // for every message instead of allocating a record each time.
    thread_local std::string record;
    encode_envelope(env, record);
    MDB_val key = as_val(env.queue_id);
    MDB_val val = as_val(content);
    if (int rc = mdb_put(txn_, spool_.contents_dbi_, &key, &val, 0); rc != 0) return Spool::error_from_lmdb(rc);
    val = as_val(record);
    return Spool::error_from_lmdb(mdb_put(txn_, spool_.envelopes_dbi_, &key, &val, 0));
}

std::error_code SpoolWriteTxn::put_envelope(const Envelope& env) {
    if (!valid_key(env.queue_id)) return SpoolError::not_found;
    MDB_val key = as_val(env.queue_id);
    MDB_val val;
    // An update for a message that is gone (deleted while its delivery ran) must not
    // bring back an envelope without content.
    if (int rc = mdb_get(txn_, spool_.envelopes_dbi_, &key, &val); rc != 0) return Spool::error_from_lmdb(rc);
    thread_local std::string record;
    encode_envelope(env, record);
    val = as_val(record);
    return Spool::error_from_lmdb(mdb_put(txn_, spool_.envelopes_dbi_, &key, &val, 0));
}

std::error_code SpoolWriteTxn::remove_message(std::string_view queue_id) {
    if (!valid_key(queue_id)) return SpoolError::not_found;
    MDB_val key = as_val(queue_id);
    if (int rc = mdb_del(txn_, spool_.envelopes_dbi_, &key, nullptr); rc != 0) return Spool::error_from_lmdb(rc);
    const int rc = mdb_del(txn_, spool_.contents_dbi_, &key, nullptr);
    return rc == MDB_NOTFOUND ? std::error_code{} : Spool::error_from_lmdb(rc);
}

std::error_code SpoolWriteTxn::put_meta(std::string_view key_text, std::string_view value) {
    if (!valid_key(key_text) || key_text == schema_key) return SpoolError::io;
    MDB_val key = as_val(key_text);
    if (value.empty()) {
        const int rc = mdb_del(txn_, spool_.meta_dbi_, &key, nullptr);
        return rc == MDB_NOTFOUND ? std::error_code{} : Spool::error_from_lmdb(rc);
    }
    MDB_val val = as_val(value);
    return Spool::error_from_lmdb(mdb_put(txn_, spool_.meta_dbi_, &key, &val, 0));
}

std::optional<Envelope> SpoolWriteTxn::find_envelope(std::string_view queue_id) {
    return get_envelope(txn_, spool_.envelopes_dbi_, queue_id);
}

}  // namespace edgerelay::queue
