// Command-line parsing and output helpers shared by every edgerelayctl command.
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "programs/ctl/ctl.h"
#include "programs/ctl/usage.h"

namespace edgerelay::ctl {

std::string Invocation::option(const std::string& name) const {
    for (const auto& [key, value] : options)
        if (key == name) return value;
    return {};
}

bool Invocation::has_option(const std::string& name) const {
    return std::any_of(options.begin(), options.end(), [&](const auto& o) { return o.first == name; });
}

void Invocation::allow_options(std::initializer_list<const char*> known) const {
    for (const auto& [name, value] : options)
        if (std::find_if(known.begin(), known.end(), [&](const char* k) { return name == k; }) == known.end())
            fail(words.empty() ? "unknown option --" + name : words[0] + (words.size() > 1 ? " " + words[1] : "") +
                                                                  " has no option --" + name);
}

[[noreturn]] void fail(const std::string& message, int status) {
    std::cerr << "edgerelayctl: " << message << "\n";
    if (status == 2) std::cerr << kUsage;
    std::exit(status);
}

Invocation parse_invocation(int argc, char** argv) {
    Invocation inv;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--json") {
            inv.json = true;
        } else if (arg == "--all") {
            inv.all = true;
        } else if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            std::exit(0);
        } else if (arg.rfind("--", 0) == 0) {
            if (i + 1 == argc) fail(arg + " needs a value");
            if (arg == "--config") inv.config_path = argv[++i];
            else inv.options.emplace_back(arg.substr(2), argv[++i]);
        } else {
            inv.words.push_back(arg);
        }
    }
    return inv;
}

conf::Config load_config(const Invocation& inv) {
    if (inv.config_path.empty()) return conf::default_config();
    auto loaded = conf::load_config_file(inv.config_path);
    if (!loaded.config) {
        for (const auto& error : loaded.errors) std::cerr << error.to_string() << "\n";
        std::exit(2);
    }
    return std::move(*loaded.config);
}

void print_json_list(const char* key, boost::json::array items) {
    boost::json::object out;
    out[key] = std::move(items);
    print_json(out);
}

void print_json(const boost::json::value& value) { std::cout << boost::json::serialize(value) << "\n"; }

}  // namespace edgerelay::ctl
