// Precompiled header for units that use Asio/Beast: parsing these headers is most of
// their compile time.
#pragma once
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/json.hpp>
