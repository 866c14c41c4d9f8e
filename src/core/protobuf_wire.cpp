// protobuf_wire.cpp: the protobuf wire format, read with every bound checked.
#include "protobuf_wire.hpp"

#include "error.hpp"

namespace discovery::protobuf {

namespace {

void putVarint(std::string &out, uint64_t v)
{
    while (v >= 0x80) {
        out.push_back(static_cast<char>(v | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

} // namespace

void WireReader::fail(const char *why) const
{
    throw Error(std::string("malformed ") + what_ + ": " + why);
}

uint64_t WireReader::varint()
{
    uint64_t v = 0;

    // at most 10 bytes, the last holding one bit
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p_ == end_) {
            fail("truncated varint");
        }
        auto b = static_cast<unsigned char>(*p_++);
        if (shift == 63 && b > 1) {
            fail("varint overflow");
        }
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            return v;
        }
    }

    fail("varint overflow");
}

bool WireReader::next(Field &f)
{
    if (p_ == end_) {
        return false;
    }

    uint64_t key = varint();
    uint64_t number = key >> 3;

    // field numbers are 1 to 2^29 - 1
    if (number == 0 || number > 0x1fffffff) {
        fail("invalid field number");
    }

    f.number = static_cast<uint32_t>(number);
    f.type = static_cast<WireType>(key & 7);
    f.varint = 0;
    f.bytes = {};

    size_t left = static_cast<size_t>(end_ - p_);

    switch (f.type) {
    case WireType::Varint:
        f.varint = varint();
        return true;

    case WireType::Fixed64:
    case WireType::Fixed32: {
        size_t n = f.type == WireType::Fixed64 ? 8 : 4;
        if (left < n) {
            fail("truncated field");
        }
        p_ += n;
        return true;
    }

    case WireType::Bytes: {
        uint64_t n = varint();
        if (n > static_cast<uint64_t>(end_ - p_)) {
            fail("length past the end of the message");
        }
        f.bytes = std::string_view(p_, static_cast<size_t>(n));
        p_ += n;
        return true;
    }

    default:
        fail("unsupported wire type");
    }
}

void appendBytes(std::string &out, uint32_t number, std::string_view value)
{
    putVarint(out, (static_cast<uint64_t>(number) << 3)
                       | static_cast<uint64_t>(WireType::Bytes));
    putVarint(out, value.size());
    out.append(value);
}

void appendVarint(std::string &out, uint32_t number, uint64_t value)
{
    putVarint(out, (static_cast<uint64_t>(number) << 3)
                       | static_cast<uint64_t>(WireType::Varint));
    putVarint(out, value);
}

} // namespace discovery::protobuf
