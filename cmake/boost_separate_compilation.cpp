// The one translation unit that compiles Boost.Asio, Boost.Asio SSL, Boost.Beast and
// Boost.JSON; every other unit sees only their declarations (separate compilation).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/json/src.hpp>
