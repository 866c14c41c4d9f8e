// ownership.hpp: the path prefixes a service may publish routes under.
#ifndef DISCOVERY_OWNERSHIP_HPP
#define DISCOVERY_OWNERSHIP_HPP

#include "log.hpp"
#include "snapshot.hpp"

#include <string>
#include <vector>

namespace discovery {

/*
 * prefix=/chat lets a service publish /chat and /chat/..., not /chatty or
 * /users: one compromised or buggy service cannot claim another's paths.
 * No prefix at all means any path.
 */
class PathPrefixes {
public:
    void add(std::string prefix);
    bool covers(const std::string &path) const;
    bool empty() const { return prefixes_.empty(); }

private:
    std::vector<std::string> prefixes_;
};

// Moves the routes outside `prefixes` to set.rejected ("outside prefix").
void rejectOutside(RouteSet &set, const PathPrefixes &prefixes);

} // namespace discovery

#endif
