// log.hpp: a copy of the glue's discovery_log_t with typed helpers.
#ifndef DISCOVERY_LOG_HPP
#define DISCOVERY_LOG_HPP

#include "discovery_core.h"

#include <string_view>

namespace discovery {

// Copied by value: the glue's struct may not outlive the call that passed it.
class Log {
public:
    Log() = default;

    explicit Log(const discovery_log_t *log)
    {
        if (log != nullptr) {
            handler_ = log->handler;
            data_ = log->data;
        }
    }

    void write(int level, std::string_view msg) const
    {
        if (handler_ != nullptr) {
            handler_(data_, level, msg.data(), msg.size());
        }
    }

    void warn(std::string_view msg) const { write(DISCOVERY_LOG_WARN, msg); }

private:
    discovery_log_pt handler_ = nullptr;
    void *data_ = nullptr;
};

} // namespace discovery

#endif
