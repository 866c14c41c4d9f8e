// huge_pages.hpp: an allocator for large lookup tables.
#ifndef DISCOVERY_HUGE_PAGES_HPP
#define DISCOVERY_HUGE_PAGES_HPP

#include <cstddef>
#include <cstdint>
#include <new>

#include <sys/mman.h>

namespace discovery {

/*
 * A table probed at random, larger than the caches, costs a TLB miss as
 * well as a cache miss per probe with 4 KiB pages.  Blocks of 2 MiB and
 * more are mapped on their own, 2 MiB aligned, and advised as huge pages,
 * which Linux's transparent huge pages honour in their default "madvise"
 * mode; smaller blocks are plain allocations.  (Not malloc for the large
 * ones: the advice would stay on heap memory that malloc reuses.)
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
        if (n > (SIZE_MAX - 2 * kHugePage) / sizeof(T)) {
            throw std::bad_alloc();
        }

        size_t bytes = n * sizeof(T);

        if (bytes < kHugePage) {
            void *p = ::operator new(bytes, std::align_val_t(alignof(T)));
            return static_cast<T *>(p);
        }

        // map a huge page more than needed, then trim to the alignment
        size_t size = rounded(bytes);
        size_t mapped = size + kHugePage;
        void *m = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            throw std::bad_alloc();
        }

        auto start = reinterpret_cast<uintptr_t>(m);
        uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);

        if (aligned > start) {
            munmap(m, aligned - start);
        }
        if (aligned + size < start + mapped) {
            munmap(reinterpret_cast<void *>(aligned + size),
                   start + mapped - (aligned + size));
        }
#ifdef MADV_HUGEPAGE
        // advice: refused where huge pages are off, and then only slower
        (void) madvise(reinterpret_cast<void *>(aligned), size, MADV_HUGEPAGE);
#endif
        return reinterpret_cast<T *>(aligned);
    }

    void deallocate(T *p, size_t n)
    {
        size_t bytes = n * sizeof(T);

        if (bytes < kHugePage) {
            ::operator delete(p, std::align_val_t(alignof(T)));
        } else {
            munmap(p, rounded(bytes));
        }
    }

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

private:
    static size_t rounded(size_t bytes)
    {
        return (bytes + kHugePage - 1) / kHugePage * kHugePage;
    }
};

} // namespace discovery

#endif
