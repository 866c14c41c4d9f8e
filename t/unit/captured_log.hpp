// captured_log.hpp: a log callback for the unit tests that keeps each line.
#pragma once

#include "log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

// What the core logged through log(), one entry per line.  Constructed
// with a level, it also checks that every line has that level.  Tests of
// the C interface pass {CapturedLog::handler, &captured} as their
// discovery_log_t.
struct CapturedLog {
    std::vector<std::string> lines;

    CapturedLog() = default;
    explicit CapturedLog(discovery::LogLevel level)
        : level_(static_cast<int>(level))
    {
    }

    discovery::Log log() { return {&CapturedLog::handler, this}; }

    static void handler(void *data, int level, const char *msg, size_t len)
    {
        auto *self = static_cast<CapturedLog *>(data);
        if (self->level_ >= 0) {
            EXPECT_EQ(level, self->level_);
        }
        self->lines.emplace_back(msg, len);
    }

private:
    int level_ = -1;
};
