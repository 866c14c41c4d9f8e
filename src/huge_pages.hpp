// huge_pages.hpp: an allocator for large lookup tables.
#ifndef DISCOVERY_HUGE_PAGES_HPP
#define DISCOVERY_HUGE_PAGES_HPP

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include <sys/mman.h>

namespace discovery {

/*
 * A table probed at random, larger than the caches, costs a TLB miss as
 * well as a cache miss per probe with 4 KiB pages.  Blocks of 2 MiB and
 * more are aligned to 2 MiB and advised as huge pages, which Linux's
 * transparent huge pages honour in their default "madvise" mode; smaller
 * blocks are plain allocations.
 */
template <class T>
struct HugePageAllocator {
    using value_type = T;

    static constexpr size_t kHugePage = 2 * 1024 * 1024;

    HugePageAllocator() = default;
    template <class U>
    HugePageAllocator(const HugePageAllocator<U> &)
    {
    }

    T *allocate(size_t n)
    {
        if (n > SIZE_MAX / sizeof(T)) {
            throw std::bad_alloc();
        }

        size_t bytes = n * sizeof(T);
        size_t align = bytes >= kHugePage ? kHugePage : alignof(T);

        align = align < sizeof(void *) ? sizeof(void *) : align;
        bytes = (bytes + align - 1) / align * align;

        void *p = std::aligned_alloc(align, bytes);
        if (p == nullptr) {
            throw std::bad_alloc();
        }
#ifdef MADV_HUGEPAGE
        if (align == kHugePage) {
            (void) madvise(p, bytes, MADV_HUGEPAGE); // advice: may be refused
        }
#endif
        return static_cast<T *>(p);
    }

    void deallocate(T *p, size_t) { std::free(p); }

    template <class U>
    bool operator==(const HugePageAllocator<U> &) const
    {
        return true;
    }
    template <class U>
    bool operator!=(const HugePageAllocator<U> &) const
    {
        return false;
    }
};

} // namespace discovery

#endif
