// The admin API's calls (SPEC §4, docs/admin-api.md): one request in, one response
// out, on the io_context's thread. Reads that scan the spool run on a reader thread so
// a scrape of a million-message queue does not stall SMTP sessions; every change goes
// through the delivery agent, which owns the schedule.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "admin/metrics.h"
#include "conf/config.h"
#include "queue/spool.h"
#include "queue/spool_writer.h"
#include "relay/delivery_agent.h"
#include "relay/smtp_server.h"
#include "routing/dns_resolver.h"
#include "routing/route_table.h"

namespace edgerelay::admin {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct AdminContext {
    const conf::Config& config;
    const routing::RouteTable& routes;
    const queue::Spool& spool;
    const queue::SpoolWriter& writer;
    relay::DeliveryAgent& delivery;
    const relay::SmtpServer& smtp;
    routing::DnsResolver& dns;
    const Metrics& metrics;
    boost::asio::thread_pool& readers;  // for spool scans off the io thread
};

boost::asio::awaitable<Response> handle_admin_request(AdminContext& context, const Request& request);

}  // namespace edgerelay::admin
