// log.hpp: where the core's messages go, a callback the caller supplies.
#ifndef DISCOVERY_LOG_HPP
#define DISCOVERY_LOG_HPP

#include <cstddef>
#include <string_view>

namespace discovery {

enum class LogLevel : int {
    Err = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
};

using LogHandler = void (*)(void *data, int level, const char *msg,
                            size_t len);

// Copied by value: it holds the callback, not whatever the caller passed
// it in.  With no handler, messages are dropped.
class Log {
public:
    Log() = default;

    Log(LogHandler handler, void *data) : handler_(handler), data_(data) {}

    void write(LogLevel level, std::string_view msg) const
    {
        if (handler_ != nullptr) {
            handler_(data_, static_cast<int>(level), msg.data(), msg.size());
        }
    }

    void warn(std::string_view msg) const { write(LogLevel::Warn, msg); }

private:
    LogHandler handler_ = nullptr;
    void *data_ = nullptr;
};

} // namespace discovery

#endif
