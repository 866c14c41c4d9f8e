// ownership.cpp: rejecting routes outside a service's prefixes.
#include "ownership.hpp"

#include <algorithm>

namespace discovery {

void PathPrefixes::add(std::string prefix)
{
    // "/chat/" and "/chat" mean the same subtree
    while (prefix.size() > 1 && prefix.back() == '/') {
        prefix.pop_back();
    }
    prefixes_.push_back(std::move(prefix));
}

bool PathPrefixes::covers(const std::string &path) const
{
    if (prefixes_.empty()) {
        return true;
    }

    return std::any_of(prefixes_.begin(), prefixes_.end(),
                       [&path](const std::string &p) {
                           return p == "/"
                                  || (path.compare(0, p.size(), p) == 0
                                      && (path.size() == p.size()
                                          || path[p.size()] == '/'));
                       });
}

void rejectOutside(RouteSet &set, const PathPrefixes &prefixes)
{
    if (prefixes.empty()) {
        return;
    }

    auto outside = std::stable_partition(
        set.routes.begin(), set.routes.end(),
        [&prefixes](const Route &r) { return prefixes.covers(r.path); });

    for (auto it = outside; it != set.routes.end(); ++it) {
        if (set.rejected.size() < kMaxRejected) {
            set.rejected.push_back(
                {it->path, it->methods, it->extensionMethods, "outside prefix"});
        } else {
            set.rejectedOmitted++;
        }
    }

    set.routes.erase(outside, set.routes.end());
}

} // namespace discovery
