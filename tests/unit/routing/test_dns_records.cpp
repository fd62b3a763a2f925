// DNS record data decoding: names, MX, A, AAAA, and every way the bytes can be wrong.
#include <gtest/gtest.h>

#include <string>

#include "routing/dns_records.h"

using namespace edgerelay::routing;
using namespace std::string_literals;

namespace {

// Wire form of a dotted name ("" is the root).
std::string wire(const std::string& dotted) {
    std::string out;
    std::size_t start = 0;
    while (start < dotted.size()) {
        auto dot = dotted.find('.', start);
        if (dot == std::string::npos) dot = dotted.size();
        out += static_cast<char>(dot - start);
        out += dotted.substr(start, dot - start);
        start = dot + 1;
    }
    return out + '\0';
}

std::string mx(unsigned preference, const std::string& exchange) {
    return std::string{static_cast<char>(preference >> 8), static_cast<char>(preference & 0xff)} + wire(exchange);
}

}  // namespace

TEST(WireName, DecodesLabelsLowerCaseWithoutTrailingDot) {
    const std::string data = wire("MX1.Example.NET");
    std::size_t offset = 0;
    EXPECT_EQ(parse_wire_name(data, offset), "mx1.example.net");
    EXPECT_EQ(offset, data.size());
}

TEST(WireName, RootIsEmpty) {
    std::size_t offset = 0;
    EXPECT_EQ(parse_wire_name("\0"s, offset), "");
    EXPECT_EQ(offset, 1u);
}

TEST(WireName, StartsAtOffsetAndStopsAfterTheName) {
    const std::string data = "xx"s + wire("a.b") + "tail";
    std::size_t offset = 2;
    EXPECT_EQ(parse_wire_name(data, offset), "a.b");
    EXPECT_EQ(offset, data.size() - 4);
}

TEST(WireName, RefusesCompressionPointers) {
    std::size_t offset = 0;
    EXPECT_FALSE(parse_wire_name("\x03mx1\xc0\x0c"s, offset));
    EXPECT_EQ(offset, 0u);  // untouched on failure
    EXPECT_FALSE(parse_wire_name("\xc0\x00"s, offset));
}

TEST(WireName, RefusesExtendedLabelTypes) {
    std::size_t offset = 0;
    EXPECT_FALSE(parse_wire_name("\x41"s + std::string(0x41, 'a') + '\0', offset));
    EXPECT_FALSE(parse_wire_name("\x80\x00"s, offset));
}

TEST(WireName, LabelOf63IsFine64IsNot) {
    std::size_t offset = 0;
    EXPECT_EQ(parse_wire_name(wire(std::string(63, 'a')), offset), std::string(63, 'a'));
    offset = 0;
    EXPECT_FALSE(parse_wire_name("\x40"s + std::string(64, 'a') + '\0', offset));
}

TEST(WireName, NameOf255OctetsIsFine256IsNot) {
    // 4 labels of 62 (63 octets each) + one of 1 (2 octets) + the root (1) = 255
    const std::string label(62, 'a');
    const std::string ok = label + "." + label + "." + label + "." + label + ".b";
    ASSERT_EQ(wire(ok).size(), 255u);
    std::size_t offset = 0;
    EXPECT_EQ(parse_wire_name(wire(ok), offset), ok);
    offset = 0;
    EXPECT_FALSE(parse_wire_name(wire(ok + "b"), offset));
}

TEST(WireName, RefusesEveryTruncation) {
    const std::string data = wire("mx1.example.net");
    for (std::size_t length = 0; length < data.size(); ++length) {
        std::size_t offset = 0;
        EXPECT_FALSE(parse_wire_name(data.substr(0, length), offset)) << "length " << length;
    }
}

TEST(WireName, OffsetPastTheEndIsRefused) {
    std::size_t offset = 5;
    EXPECT_FALSE(parse_wire_name("\0"s, offset));
}

TEST(WireName, RefusesBytesThatWouldNeedEscaping) {
    for (char c : {'.', '\\', ' ', '\0', '\x7f', '\xe9'}) {
        std::size_t offset = 0;
        EXPECT_FALSE(parse_wire_name("\x03"s + "a" + c + "b" + '\0', offset)) << int(c);
    }
    std::size_t offset = 0;
    EXPECT_EQ(parse_wire_name(wire("_dmarc.x-y.example"), offset), "_dmarc.x-y.example");
}

TEST(MxRdata, PreferenceAndExchange) {
    EXPECT_EQ(parse_mx_rdata(mx(10, "MX1.Example.net")), (MxRecord{10, "mx1.example.net"}));
    EXPECT_EQ(parse_mx_rdata(mx(65535, "a")), (MxRecord{65535, "a"}));
    EXPECT_EQ(parse_mx_rdata(mx(258, "a")), (MxRecord{258, "a"}));  // network byte order
}

TEST(MxRdata, RootExchangeIsNullMx) {
    EXPECT_EQ(parse_mx_rdata(mx(0, "")), (MxRecord{0, ""}));
}

TEST(MxRdata, RefusesEveryTruncation) {
    const std::string data = mx(10, "mx1.example.net");
    for (std::size_t length = 0; length < data.size(); ++length)
        EXPECT_FALSE(parse_mx_rdata(data.substr(0, length))) << "length " << length;
}

TEST(MxRdata, RefusesTrailingBytesAndPointers) {
    EXPECT_FALSE(parse_mx_rdata(mx(10, "mx1.example") + "x"));
    EXPECT_FALSE(parse_mx_rdata("\x00\x0a\xc0\x0c"s));
}

TEST(ARdata, DottedQuad) {
    EXPECT_EQ(parse_a_rdata("\xc0\x00\x02\x01"s), "192.0.2.1");
    EXPECT_EQ(parse_a_rdata("\x00\x00\x00\x00"s), "0.0.0.0");
}

TEST(ARdata, RefusesWrongLengths) {
    const std::string data = "\x7f\x00\x00\x01\x02"s;
    for (std::size_t length = 0; length <= data.size(); ++length)
        if (length != 4) {
            EXPECT_FALSE(parse_a_rdata(data.substr(0, length))) << "length " << length;
        }
}

TEST(AaaaRdata, CompressedText) {
    EXPECT_EQ(parse_aaaa_rdata("\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01"s), "2001:db8::1");
    EXPECT_EQ(parse_aaaa_rdata(std::string(15, '\0') + "\x01"s), "::1");
    EXPECT_EQ(parse_aaaa_rdata(std::string(10, '\0') + "\xff\xff\xc0\x00\x02\x01"s), "::ffff:192.0.2.1");
}

TEST(AaaaRdata, RefusesWrongLengths) {
    const std::string data(17, '\x01');
    for (std::size_t length = 0; length <= data.size(); ++length)
        if (length != 16) {
            EXPECT_FALSE(parse_aaaa_rdata(data.substr(0, length))) << "length " << length;
        }
}
