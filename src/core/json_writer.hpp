// json_writer.hpp: appends JSON, for the status page and the management API.
#ifndef DISCOVERY_JSON_WRITER_HPP
#define DISCOVERY_JSON_WRITER_HPP

#include "json_escape.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace discovery {

// Appends JSON, placing commas itself so callers only say what comes next.
class JsonWriter {
public:
    void beginObject() { open('{'); }
    void endObject() { close('}'); }
    void beginArray() { open('['); }
    void endArray() { close(']'); }

    void key(std::string_view k)
    {
        separate();
        appendJsonString(out_, k);
        out_ += ':';
        afterKey_ = true;
    }

    void string(std::string_view s)
    {
        separate();
        appendJsonString(out_, s);
    }

    // null for empty: the model's way of saying "none"
    void stringOrNull(std::string_view s)
    {
        if (s.empty()) {
            null();
        } else {
            string(s);
        }
    }

    void null() { raw("null"); }
    // JSON another writer made
    void rawValue(std::string_view json) { raw(json); }
    void boolean(bool b) { raw(b ? "true" : "false"); }
    void number(uint64_t n) { raw(std::to_string(n)); }
    void integer(int64_t n) { raw(std::to_string(n)); }

    std::string take() { return std::move(out_); }

private:
    void separate()
    {
        if (afterKey_) {
            afterKey_ = false;
        } else if (needComma_) {
            out_ += ',';
        }
        needComma_ = true;
    }

    void raw(std::string_view s)
    {
        separate();
        out_ += s;
    }

    void open(char c)
    {
        separate();
        out_ += c;
        needComma_ = false;
    }

    void close(char c)
    {
        out_ += c;
        needComma_ = true;
    }

    std::string out_;
    bool needComma_ = false;
    bool afterKey_ = false;
};

} // namespace discovery

#endif
