// edgerelayd: the relay daemon. Parses arguments, loads the configuration, opens the
// spool and the log, starts the SMTP listeners and runs until SIGTERM/SIGINT.
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/ssl/context.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "admin/admin_server.h"
#include "admin/metrics.h"
#include "conf/config.h"
#include "queue/event_log.h"
#include "queue/spool.h"
#include "queue/spool_writer.h"
#include "queue/tracking_index.h"
#include "relay/delivery_agent.h"
#include "relay/queued_handoff.h"
#include "relay/smtp_server.h"
#include "relay/tls_context.h"
#include "routing/route_table.h"

namespace {

constexpr const char* kUsage =
    "usage: edgerelayd [--config FILE] [--check-config]\n"
    "  --config FILE    configuration (TOML); without it the embedded defaults apply\n"
    "  --check-config   validate the configuration and exit (0 good, 2 errors)\n";

struct Arguments {
    std::string config_path;
    bool check_only = false;
};

// Exit status 2 for usage and configuration errors, like --check-config promises.
[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "edgerelayd: " << message << "\n" << kUsage;
    std::exit(2);
}

Arguments parse_arguments(int argc, char** argv) {
    Arguments args;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--config" || arg == "-c") {
            if (++i == argc) usage_error("--config needs a file name");
            args.config_path = argv[i];
        } else if (arg.rfind("--config=", 0) == 0) {
            args.config_path = arg.substr(9);
        } else if (arg == "--check-config") {
            args.check_only = true;
        } else if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            std::exit(0);
        } else {
            usage_error("unknown argument '" + arg + "'");
        }
    }
    return args;
}

edgerelay::conf::Config load_or_exit(const Arguments& args) {
    using namespace edgerelay;
    conf::LoadResult loaded =
        args.config_path.empty() ? conf::LoadResult{conf::default_config(), {}} : conf::load_config_file(args.config_path);
    if (loaded.config) {
        for (auto& error : routing::check_routes(*loaded.config)) loaded.errors.push_back(std::move(error));
    }
    if (!loaded.errors.empty()) {
        for (const auto& error : loaded.errors) std::cerr << error.to_string() << "\n";
        std::exit(2);
    }
    return std::move(*loaded.config);
}

// 10,000 concurrent clients need more descriptors than the usual soft limit of 1024.
void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

}  // namespace

int main(int argc, char** argv) {
    using namespace edgerelay;
    const Arguments args = parse_arguments(argc, argv);
    const conf::Config config = load_or_exit(args);
    if (args.check_only) {
        std::cout << config.source << ": configuration OK\n";
        return 0;
    }
    std::signal(SIGPIPE, SIG_IGN);
    raise_descriptor_limit();

    try {
        queue::Spool spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_write);
        queue::EventLog log(config.log.path);
        const routing::RouteTable routes(config.routes);
        auto tls = relay::make_server_tls_context(config.server);
        queue::SpoolWriter writer(spool);
        // Every event also goes to the tracking index, batched into the writer's commits.
        queue::TrackingIndex tracking(spool);
        queue::TrackingFeed feed(tracking, writer, config.log.retention);
        // Metrics count the same events, so a counter and the log never disagree.
        admin::Metrics metrics;
        log.set_sink([&feed, &metrics](const queue::LogEvent& event, std::string_view json) {
            feed.accept(event, json);
            metrics.observe(event);
        });

        // Two threads of Asio: intake (SMTP sessions) on its own, delivery and the admin
        // API on the other. A failover that moves a few hundred thousand queued messages
        // keeps the delivery thread busy for seconds; a client's next reply must not wait
        // for that (Postfix keeps smtpd and qmgr apart for the same reason).
        boost::asio::io_context io(1);
        boost::asio::io_context intake_io(1);
        routing::DnsResolver dns(io.get_executor(), config.dns);
        relay::DeliveryAgent delivery(io, config, routes, spool, writer, log, dns);
        relay::IntakeServices services{config, routes, writer, log, tls.get()};
        relay::QueuedHandoff handoff(intake_io.get_executor(), io.get_executor(),
                                     [&delivery](const std::string& id) { delivery.on_queued(id); });
        services.on_queued = [&handoff](const std::string& id) { handoff.queued(id); };
        relay::SmtpServer server(intake_io, services);
        server.listen();
        const std::size_t queued = delivery.start();
        boost::asio::thread_pool readers(1);  // the admin API's spool scans
        admin::AdminContext admin_context{config, routes, spool, writer, delivery, server, dns, metrics, readers};
        admin::AdminServer admin(io, admin_context);
        admin.listen();

        boost::asio::signal_set signals(io, SIGTERM, SIGINT);
        signals.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) return;
            boost::asio::post(intake_io, [&server] { server.stop(); });
            admin.stop();
            delivery.stop();
        });
        std::cerr << "edgerelayd: " << config.source << ": listening on";
        for (const auto& endpoint : config.server.listen) std::cerr << " " << endpoint.to_string();
        std::cerr << ", admin API on " << config.admin.listen.to_string();
        std::cerr << ", spool " << config.spool.path << " (" << queued << " messages queued)\n";

        // The intake thread ends when its listeners and sessions have closed (after
        // SIGTERM); what they committed meanwhile is in the spool either way.
        std::thread intake([&intake_io] {
            try {
                intake_io.run();
            } catch (const std::exception& e) {
                // As on the main thread: a bug, not a client's doing. Every 250 given is
                // durable already; the service manager restarts the daemon.
                std::cerr << "edgerelayd: intake: " << e.what() << "\n";
                std::_Exit(1);
            }
        });
        io.run();
        intake.join();
        readers.join();
        feed.stop();  // its last batch, before the writer stops taking work
        log.set_sink(nullptr);
        writer.stop();
        log.flush();
        std::cerr << "edgerelayd: stopped\n";
    } catch (const std::exception& e) {
        std::cerr << "edgerelayd: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
