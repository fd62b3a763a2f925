// edgerelayctl's shared parts: the parsed command line, the configuration, and the
// command groups (one file each). Read-only commands open the spool directly; commands
// that change state go through the daemon's admin API (admin_client.h).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"

namespace edgerelay::ctl {

struct Invocation {
    std::string config_path;
    bool json = false;
    bool all = false;                                          // --all (queue flush)
    std::vector<std::string> words;                            // noun, verb, positional arguments
    std::vector<std::pair<std::string, std::string>> options;  // --name value
    std::string option(const std::string& name) const;
    bool has_option(const std::string& name) const;
    // Exits with a usage error when an option other than `known` was given.
    void allow_options(std::initializer_list<const char*> known) const;
};

// Prints "edgerelayctl: message" and exits; status 2 also prints the usage.
[[noreturn]] void fail(const std::string& message, int status = 2);
Invocation parse_invocation(int argc, char** argv);
conf::Config load_config(const Invocation& inv);
// {"<key>": items} on one line: every --json list has this shape (SPEC §2).
void print_json_list(const char* key, boost::json::array items);
void print_json(const boost::json::value& value);

// The command groups; each returns the exit status.
int queue_command(const Invocation& inv, const conf::Config& config);
int queue_summary_command(const Invocation& inv, const conf::Config& config);
int log_command(const Invocation& inv, const conf::Config& config);
int route_command(const Invocation& inv, const conf::Config& config);
int mx_command(const Invocation& inv, const conf::Config& config);

}  // namespace edgerelay::ctl
