// libunbound on the Asio loop. libunbound resolves in its own thread and writes each
// finished query to a pipe (ub_fd); the io_context watches that pipe and runs
// ub_process, whose callbacks wake the coroutines waiting in query(). libunbound's
// cache is the DNS cache: its TTLs are capped by [dns] max_ttl.
//
// Assumes the executor runs one handler at a time (one thread, or a strand): the
// table of outstanding queries is not locked.
#include "routing/dns_resolver.h"

#include <unbound.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>
#include <unordered_map>

namespace edgerelay::routing {
namespace asio = boost::asio;

namespace {

DnsAnswer failure(std::string error) {
    DnsAnswer answer;
    answer.status = DnsStatus::temporary_failure;
    answer.error = std::move(error);
    return answer;
}

std::string rcode_text(int rcode) {
    switch (rcode) {
        case 1: return "FORMERR";
        case 2: return "SERVFAIL";
        case 4: return "NOTIMP";
        case 5: return "REFUSED";
        default: return "rcode " + std::to_string(rcode);
    }
}

std::string canonical(const char* name) {
    std::string out = name ? name : "";
    if (!out.empty() && out.back() == '.') out.pop_back();
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
    return out;
}

DnsAnswer to_answer(const ub_result& result) {
    DnsAnswer answer;
    answer.canonical_name = canonical(result.canonname ? result.canonname : result.qname);
    answer.ttl = std::chrono::seconds(std::max(result.ttl, 0));
    if (result.rcode == 3 || result.nxdomain) {
        answer.status = DnsStatus::nxdomain;
    } else if (result.rcode == 0 && result.havedata) {
        answer.status = DnsStatus::ok;
        for (int i = 0; result.data[i]; ++i) answer.rdata.emplace_back(result.data[i], result.len[i]);
    } else if (result.rcode == 0) {
        answer.status = DnsStatus::nodata;
    } else {
        answer = failure(rcode_text(result.rcode));
    }
    return answer;
}

void set_option(ub_ctx* ctx, const char* option, const std::string& value) {
    if (const int err = ub_ctx_set_option(ctx, option, value.c_str()))
        throw std::runtime_error(std::string("libunbound option ") + option + " " + value + ": " + ub_strerror(err));
}

}  // namespace

struct DnsResolver::Impl : std::enable_shared_from_this<DnsResolver::Impl> {
    // One query libunbound is working on. Owned by the table of outstanding queries
    // until its callback ran or it was cancelled, so libunbound's pointer to it stays
    // valid; the coroutine waiting for it holds it too. The timer is both the timeout
    // and the wake-up: the callback cancels it.
    struct Pending {
        explicit Pending(const asio::any_io_executor& executor) : wake(executor) {}
        asio::steady_timer wake;
        DnsAnswer answer;
        bool done = false;
        int id = 0;
        Impl* owner = nullptr;
    };

    asio::any_io_executor executor;
    ub_ctx* ctx = nullptr;
    asio::posix::stream_descriptor results;  // a dup of ub_fd: closing it leaves libunbound's alone
    std::unordered_map<int, std::shared_ptr<Pending>> pending;
    bool watching = false;
    bool closed = false;

    Impl(asio::any_io_executor ex, const conf::DnsConfig& config) : executor(ex), results(ex) {
        ctx = ub_ctx_create();
        if (!ctx) throw std::runtime_error("libunbound: cannot create a context");
        configure(config);
        if (const int err = ub_ctx_async(ctx, 1))  // a thread, not a forked process
            throw std::runtime_error(std::string("libunbound async: ") + ub_strerror(err));
        const int fd = ub_fd(ctx);
        const int copy = fd < 0 ? -1 : ::dup(fd);
        if (copy < 0) throw std::runtime_error("libunbound: no result descriptor");
        results.assign(copy);
    }

    ~Impl() {
        if (ctx) ub_ctx_delete(ctx);
    }

    void configure(const conf::DnsConfig& config) {
        const auto max_ttl = std::chrono::duration_cast<std::chrono::seconds>(config.max_ttl).count();
        // Nameservers on loopback (a local unbound, test rigs) are the common case.
        set_option(ctx, "do-not-query-localhost:", "no");
        set_option(ctx, "cache-max-ttl:", std::to_string(max_ttl));
        set_option(ctx, "cache-max-negative-ttl:", std::to_string(std::min<long long>(max_ttl, 3600)));
        // A record change must show within its TTL (SPEC §4): never answer from an
        // expired entry, and never refresh early (which would hide the real expiry).
        set_option(ctx, "prefetch:", "no");
        set_option(ctx, "serve-expired:", "no");
        // With a single forwarder, a few timeouts would otherwise mark it down for
        // minutes (infra-host-ttl) and turn every query into SERVFAIL.
        set_option(ctx, "infra-keep-probing:", "yes");
        // libunbound answers the special-use "test." (RFC 6761) NXDOMAIN itself; test
        // rigs and the demo's DNS server serve names under it, so ask the nameserver.
        // ("nodefault" is ignored when set through libunbound; an empty transparent
        // zone passes every query on.)
        set_option(ctx, "local-zone:", "test. transparent");
        for (const auto& server : config.nameservers) {
            const std::string forwarder = server.host + "@" + std::to_string(server.port);
            if (const int err = ub_ctx_set_fwd(ctx, forwarder.c_str()))
                throw std::runtime_error("nameserver " + server.to_string() + ": " + ub_strerror(err));
        }
        if (config.nameservers.empty() && ub_ctx_resolvconf(ctx, nullptr) != 0) {
            // No usable resolv.conf: the local resolver is the conventional fallback.
            if (const int err = ub_ctx_set_fwd(ctx, "127.0.0.1"))
                throw std::runtime_error(std::string("libunbound forwarder 127.0.0.1: ") + ub_strerror(err));
        }
    }

    std::shared_ptr<Pending> start(const std::string& name, std::uint16_t rrtype) {
        auto query = std::make_shared<Pending>(executor);
        if (closed) {
            query->answer = failure("resolver shut down");
            query->done = true;
            return query;
        }
        int id = 0;
        if (const int err = ub_resolve_async(ctx, name.c_str(), rrtype, 1 /* IN */, query.get(), &Impl::on_result, &id)) {
            query->answer = failure(ub_strerror(err));
            query->done = true;
            return query;
        }
        query->id = id;
        query->owner = this;
        pending.emplace(id, query);
        watch();
        return query;
    }

    // libunbound calls this from ub_process, that is from on_readable on our executor.
    static void on_result(void* data, int err, ub_result* result) {
        auto* query = static_cast<Pending*>(data);
        query->answer = err ? failure(ub_strerror(err)) : result ? to_answer(*result) : failure("no result");
        if (result) ub_resolve_free(result);
        query->done = true;
        query->wake.cancel();
        query->owner->forget(query->id);  // may free the query: last
    }

    // The waiting coroutine gave up (timeout, cancellation): libunbound must not call back.
    void abandon(Pending& query, std::string why) {
        // A failed cancel means the result is on its way: the table keeps the query
        // until the callback, which then finds valid memory and nobody waiting.
        const bool cancelled = closed || ub_cancel(ctx, query.id) == 0;
        query.answer = failure(std::move(why));
        query.done = true;
        if (cancelled) forget(query.id);
    }

    void forget(int id) {
        pending.erase(id);
        // Nothing outstanding: stop watching, so an idle resolver keeps no work on the loop.
        boost::system::error_code ignored;
        if (pending.empty() && watching) results.cancel(ignored);
    }

    void watch() {
        if (closed || watching || pending.empty()) return;
        watching = true;
        results.async_wait(asio::posix::stream_descriptor::wait_read,
                           [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
        // The pipe is watched edge-triggered: a result written after the last
        // ub_process but before this wait, and seen by another thread's epoll_wait,
        // would otherwise wait for the next one.
        if (ub_poll(ctx))
            asio::post(executor, [self = shared_from_this()] {
                if (!self->closed) ub_process(self->ctx);
            });
    }

    void on_readable(boost::system::error_code ec) {
        watching = false;
        if (closed) return;
        if (!ec) ub_process(ctx);
        watch();
    }

    // The resolver is going away: its queries end now as temporary failures.
    void shutdown() {
        closed = true;
        boost::system::error_code ignored;
        results.close(ignored);
        ub_ctx_delete(ctx);  // stops libunbound's thread; no callback runs after this
        ctx = nullptr;
        auto outstanding = std::move(pending);
        pending.clear();
        for (auto& [id, query] : outstanding) {
            query->answer = failure("resolver shut down");
            query->done = true;
            query->wake.cancel();
        }
    }
};

DnsResolver::DnsResolver(asio::any_io_executor executor, const conf::DnsConfig& config)
    : impl_(std::make_shared<Impl>(std::move(executor), config)) {}

DnsResolver::~DnsResolver() { impl_->shutdown(); }

asio::awaitable<DnsAnswer> DnsResolver::query(std::string name, std::uint16_t rrtype,
                                              std::chrono::milliseconds timeout) {
    auto impl = impl_;  // the coroutine may outlive the resolver
    auto query = impl->start(name, rrtype);
    if (!query->done) {
        query->wake.expires_after(timeout);
        auto waited = co_await query->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)waited;  // done tells what happened; a timer that fired says "timeout"
        if (!query->done) {
            const bool expired = std::chrono::steady_clock::now() >= query->wake.expiry();
            impl->abandon(*query, expired ? "timeout" : "cancelled");
        }
    }
    co_return std::move(query->answer);
}

}  // namespace edgerelay::routing
