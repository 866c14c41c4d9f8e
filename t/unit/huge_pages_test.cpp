// huge_pages_test.cpp: the allocator of the router's table.
#include "huge_pages.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

using discovery::HugePageAllocator;

namespace {

struct alignas(64) Line {
    unsigned char bytes[64];
};

uintptr_t address(const void *p)
{
    return reinterpret_cast<uintptr_t>(p);
}

} // namespace

TEST(HugePageAllocator, LargeBlocksAreAlignedToAHugePage)
{
    constexpr size_t kLines = (3 << 20) / sizeof(Line); // 3 MiB
    std::vector<Line, HugePageAllocator<Line>> v(kLines);

    EXPECT_EQ(address(v.data()) % HugePageAllocator<Line>::kHugePage, 0u);
    v.back().bytes[63] = 1; // the whole block is usable
    EXPECT_EQ(v.back().bytes[63], 1);
}

TEST(HugePageAllocator, SmallBlocksKeepTheTypesAlignment)
{
    std::vector<Line, HugePageAllocator<Line>> v(3);
    std::vector<char, HugePageAllocator<char>> c(5);

    EXPECT_EQ(address(v.data()) % alignof(Line), 0u);
    EXPECT_NE(c.data(), nullptr);
}

TEST(HugePageAllocator, ImpossibleSizesThrow)
{
    HugePageAllocator<Line> a;
    EXPECT_THROW(a.allocate(SIZE_MAX / 2), std::bad_alloc);
}
