// protobuf_wire.hpp: a bounds-checked reader and a small writer of the
// protobuf wire format, enough for gRPC reflection and health messages.
#ifndef DISCOVERY_PROTOBUF_WIRE_HPP
#define DISCOVERY_PROTOBUF_WIRE_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace discovery::protobuf {

enum class WireType : uint8_t {
    Varint = 0,
    Fixed64 = 1,
    Bytes = 2, // length-delimited: strings, bytes, messages
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
};

// One field as it sits in a message; `bytes` views the message.
struct Field {
    uint32_t number = 0;
    WireType type = WireType::Varint;
    uint64_t varint = 0;    // Varint
    std::string_view bytes; // Bytes
};

/*
 * Walks the fields of one message, in the order they come.  Every length
 * is checked against what is left of the message, so a hostile one can
 * neither read past its end nor make us allocate: a field's bytes are a
 * view.  Throws Error("malformed <what>: ...") at the first violation.
 * Groups (deprecated, in none of the messages we read) are refused.
 */
class WireReader {
public:
    WireReader(std::string_view message, const char *what)
        : p_(message.data()), end_(message.data() + message.size()), what_(what)
    {
    }

    // The next field into `f`; false at the end of the message.
    bool next(Field &f);

private:
    uint64_t varint();
    [[noreturn]] void fail(const char *why) const;

    const char *p_;
    const char *end_;
    const char *what_;
};

// Appends a length-delimited field.
void appendBytes(std::string &out, uint32_t number, std::string_view value);

// Appends a varint field.
void appendVarint(std::string &out, uint32_t number, uint64_t value);

} // namespace discovery::protobuf

#endif
