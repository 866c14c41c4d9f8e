// captured_log.hpp: a log callback for the unit tests that keeps each line.
#pragma once

#include "discovery_core.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

// What the core logged through sink(), one entry per line.  Constructed
// with a level, it also checks that every line has that level.
struct CapturedLog {
    std::vector<std::string> lines;

    CapturedLog() = default;
    explicit CapturedLog(int level) : level_(level) {}

    discovery_log_t sink() { return {&CapturedLog::handler, this}; }

private:
    static void handler(void *data, int level, const char *msg, size_t len)
    {
        auto *self = static_cast<CapturedLog *>(data);
        if (self->level_ >= 0) {
            EXPECT_EQ(level, self->level_);
        }
        self->lines.emplace_back(msg, len);
    }

    int level_ = -1;
};
