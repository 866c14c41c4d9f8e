// router_update_test.cpp: images made from the previous one answer as new.
#include "controls.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "snapshot_update.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace discovery {
namespace {

constexpr char kUuid[] = "123e4567-e89b-12d3-a456-426614174000";

// An image written out, aligned, with a view of it.
struct Written {
    std::shared_ptr<unsigned char> bytes;
    size_t size = 0;
    std::unique_ptr<Router> router;

    explicit Written(const Router::Image &image) : size(image.size())
    {
        bytes.reset(static_cast<unsigned char *>(
                        std::aligned_alloc(Router::kImageAlign, size)),
                    [](unsigned char *p) { std::free(p); });
        image.write(bytes.get());
        router = Router::view(bytes.get(), size);
    }
};

bool same(const Match &a, const Match &b)
{
    return a.status == b.status && a.service == b.service
           && a.upstream == b.upstream && a.route == b.route
           && a.allow == b.allow && a.authRequired == b.authRequired
           && a.protocol == b.protocol && a.streaming == b.streaming
           && a.serviceIndex == b.serviceIndex;
}

std::string describe(const Match &m)
{
    return std::to_string(static_cast<int>(m.status)) + " "
           + std::string(m.service) + " " + std::string(m.upstream) + " "
           + std::string(m.route) + " [" + std::string(m.allow) + "] "
           + (m.authRequired ? "auth " : "")
           + std::to_string(static_cast<int>(m.protocol)) + " "
           + std::to_string(static_cast<int>(m.streaming)) + " "
           + std::to_string(m.serviceIndex);
}

// A request path a template takes, parameters filled in by `variant`.
std::string instance(const std::string &tpl, size_t variant)
{
    static const char *const strs[] = {"abc", "7", "1.5", kUuid};
    std::string out;
    size_t i = 0;

    while (i < tpl.size()) {
        size_t open = tpl.find('{', i);
        if (open == std::string::npos) {
            out += tpl.substr(i);
            break;
        }
        out += tpl.substr(i, open - i);
        size_t close = tpl.find('}', open);
        std::string param = tpl.substr(open, close - open + 1);
        if (param.find(":int") != std::string::npos) {
            out += "42";
        } else if (param.find(":float") != std::string::npos) {
            out += "2.5";
        } else if (param.find(":uuid") != std::string::npos) {
            out += kUuid;
        } else if (param.find(":path") != std::string::npos) {
            out += variant % 2 ? "p/q" : "p";
        } else {
            out += strs[variant % 4];
        }
        i = close + 1;
    }
    return out;
}

class Table {
public:
    explicit Table(uint32_t seed, bool denyOverlaps) : rng_(seed)
    {
        for (size_t s = 0; s < kServices; s++) {
            names_.push_back("s" + std::to_string(s));
            urls_.push_back("http://s" + std::to_string(s));
            upstreams_.push_back("up" + std::to_string(s));
        }
        std::vector<ServiceConf> confs;
        for (size_t s = 0; s < kServices; s++) {
            confs.push_back({names_[s], urls_[s], upstreams_[s]});
        }
        table_ = applyRoster(nullptr, 0, confs, denyOverlaps, 1, Log(), &snap_);
        routes_.resize(kServices);
        states_.assign(kServices, ServiceState::Pending);
        image_ = std::make_unique<Written>(Router::image(snap_));
    }

    // One random change: true once it was applied.
    bool step()
    {
        if (rng_() % 40 == 0 || overridden_) {
            return changeControls();
        }

        std::vector<PollResult> polls;
        std::vector<Bytes> docs;
        size_t n = 1 + rng_() % 2;

        docs.reserve(n);
        for (size_t k = 0; k < n; k++) {
            size_t s = rng_() % kServices;
            PollResult poll;
            poll.name = names_[s];
            poll.url = urls_[s];
            if (rng_() % 6 == 0) {
                // only the state: the routes as they were
                states_[s] = static_cast<ServiceState>(rng_() % 3);
            } else {
                states_[s] = ServiceState::Healthy;
                mutate(routes_[s]);
                RouteSet set;
                set.routes = routes_[s];
                docs.push_back(encodeRouteSet(set));
                poll.routes = docs.back().data();
                poll.routesLen = docs.back().size();
            }
            poll.state = states_[s];
            polls.push_back(poll);
        }

        Snapshot sealed;
        Router::TableBefore before;
        auto next = applyPolls(table_.data(), table_.size(), polls,
                               ++generation_, Log(), &sealed, nullptr, &before);
        if (!next) {
            return false;
        }
        install(std::move(*next), sealed, before);
        return true;
    }

    size_t incremental = 0;
    size_t whole = 0;
    std::map<std::string, size_t> fallbacks;
    size_t lookups = 0;

private:
    static constexpr size_t kServices = 4;

    void mutate(std::vector<Route> &routes)
    {
        size_t what = rng_() % 30;

        if (routes.size() > 20) {
            what = 15; // a removal: lookups are tried on every route
        }
        if (routes.empty() || what < 12) {
            size_t count = 1 + (rng_() % 8 == 0 ? rng_() % 20 : 0);
            for (size_t i = 0; i < count; i++) {
                routes.insert(routes.begin() + rng_() % (routes.size() + 1),
                              randomRoute());
            }
        } else if (what < 21) {
            routes.erase(routes.begin() + rng_() % routes.size());
        } else if (what < 25) {
            Route &r = routes[rng_() % routes.size()];
            r.methods = randomMethods();
            r.authRequired = rng_() % 2;
        } else if (what < 29) {
            // another service's route: a conflict, or an overlap
            for (const auto &other : routes_) {
                if (!other.empty() && &other != &routes) {
                    routes.push_back(other[rng_() % other.size()]);
                    break;
                }
            }
        } else if (routes.size() > 1) {
            std::swap(routes[rng_() % routes.size()],
                      routes[rng_() % routes.size()]);
        }
    }

    uint32_t randomMethods()
    {
        static const uint32_t bits[] = {kGet, kPost, kPut, kDelete, kPatch};
        uint32_t m = 0;
        while (m == 0) {
            for (uint32_t b : bits) {
                if (rng_() % 3 == 0) {
                    m |= b;
                }
            }
        }
        return m;
    }

    Route randomRoute()
    {
        static const char *const segments[] = {
            "a",        "b",
            "users",    "{id}",
            "{n:int}",  "{f:float}",
            "{u:uuid}", "{p:path}",
            "v1",       "a-rather-long-segment-for-tails",
        };
        Route r;
        size_t len = 1 + rng_() % 4;
        bool path = false;
        for (size_t k = 0; k < len; k++) {
            std::string seg = segments[rng_() % 10];
            if (seg == "{p:path}" && path) {
                seg = "b";
            }
            path |= seg == "{p:path}";
            r.path += "/" + seg;
        }
        if (rng_() % 8 == 0) {
            r.path += "/";
        }
        r.methods = randomMethods();
        r.authRequired = rng_() % 4 == 0;
        if (rng_() % 20 == 0) {
            r.protocol = Protocol::Grpc;
            r.methods = kPost;
            r.streaming = static_cast<Streaming>(rng_() % 4);
        }
        return r;
    }

    // A drain, or an override (which the image does not patch), through
    // the management API's path: the table's controls replaced.
    bool changeControls()
    {
        Controls c =
            decodeControls(snap_.controls.data(), snap_.controls.size());
        if (rng_() % 3 == 0 && c.overrides.empty()) {
            Override o;
            o.id = "o" + std::to_string(c.nextId++);
            o.action = OverrideAction::Disable;
            o.path = "/a/{id}";
            o.methods = {"*"};
            c.overrides.push_back(o);
        } else if (!c.overrides.empty()) {
            c.overrides.clear(); // the next step: they make whole builds
        } else {
            const std::string &name = names_[rng_() % kServices];
            c.setDrained(name, !c.isDrained(name));
        }

        Router::TableBefore before;
        before.generation = snap_.generation;
        before.rejections = snap_.rejections;
        before.extensionMethods = snap_.extensionMethods;
        before.controls = snap_.controls;

        overridden_ = !c.overrides.empty();
        Bytes next = replaceControls(table_.data(), table_.size(),
                                     encodeControls(c), ++generation_);
        Snapshot sealed = decodeSnapshot(next.data(), next.size());
        install(std::move(next), sealed, before);
        return true;
    }

    void install(Bytes next, const Snapshot &sealed,
                 const Router::TableBefore &before)
    {
        Router::UpdateInfo info;
        Router::Image patched = Router::update(
            image_->bytes.get(), image_->size, before, sealed, &info);
        auto updated = std::make_unique<Written>(patched);
        Written fresh(Router::image(sealed));

        if (info.incremental) {
            incremental++;
            EXPECT_EQ(updated->size, image_->size) << "patched in place";
        } else {
            whole++;
            fallbacks[info.fallback]++;
        }
        EXPECT_EQ(Router::audit(updated->bytes.get(), updated->size), "")
            << "incremental " << info.incremental;
        if (sealed.generation % 16 == 0) { // the whole build's, now and then
            EXPECT_EQ(Router::audit(fresh.bytes.get(), fresh.size), "");
        }
        EXPECT_EQ(updated->router->generation(), sealed.generation);
        EXPECT_EQ(updated->router->anyPending(), fresh.router->anyPending());
        EXPECT_EQ(updated->router->nodeCount(), fresh.router->nodeCount())
            << "a node with nothing in or below it was left";
        ASSERT_EQ(updated->router->serviceCount(),
                  fresh.router->serviceCount());
        for (size_t s = 0; s < fresh.router->serviceCount(); s++) {
            Router::ServiceView a = updated->router->service(s);
            Router::ServiceView b = fresh.router->service(s);
            EXPECT_EQ(a.name, b.name);
            EXPECT_EQ(a.state, b.state);
            EXPECT_EQ(a.drained, b.drained);
        }

        compare(*updated->router, *fresh.router, sealed);

        table_ = std::move(next);
        snap_ = sealed;
        image_ = std::move(updated);
    }

    void compare(const Router &updated, const Router &fresh,
                 const Snapshot &snap)
    {
        static const char *const methods[] = {
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"};
        std::vector<std::string> paths = {"/", "/a", "/a/", "/b/7", "/x/y/z"};

        // every route's template filled in, and others
        for (const Service &service : snap.services) {
            for (const Route &route : service.routeSet.routes) {
                paths.push_back(instance(route.path, rng_()));
            }
        }
        for (size_t i = 0; i < 10; i++) {
            paths.push_back(instance(randomRoute().path, rng_()));
        }

        for (const std::string &path : paths) {
            for (const char *method : methods) {
                Match a = updated.match(method, path, false);
                Match b = fresh.match(method, path, false);
                lookups++;
                if (!same(a, b)) { // described only then: it is slow
                    ASSERT_EQ(describe(a), describe(b))
                        << method << " " << path << " at table "
                        << snap.generation;
                }
            }
            Match a = updated.match("GET", path, true);
            Match b = fresh.match("GET", path, true);
            if (!same(a, b)) {
                ASSERT_EQ(describe(a), describe(b)) << "websocket " << path;
            }
        }
    }

    std::mt19937 rng_;
    std::vector<std::string> names_, urls_, upstreams_;
    std::vector<std::vector<Route>> routes_;
    std::vector<ServiceState> states_;
    Bytes table_;
    Snapshot snap_;
    std::unique_ptr<Written> image_;
    uint64_t generation_ = 1;
    bool overridden_ = false;
};

void run(uint32_t seed, bool denyOverlaps, size_t steps)
{
    Table table(seed, denyOverlaps);
    size_t applied = 0;

    for (size_t i = 0; i < steps && !testing::Test::HasFatalFailure(); i++) {
        applied += table.step();
    }

    std::string why;
    for (const auto &[reason, count] : table.fallbacks) {
        why += "\n  " + reason + ": " + std::to_string(count);
    }
    // most changes must be patched, or the test tests the whole build
    EXPECT_GT(table.incremental, applied * 3 / 4)
        << table.whole << " whole builds:" << why;
    EXPECT_GT(table.whole, 0u) << "no fallback was exercised";
    EXPECT_GT(table.lookups, steps * 100);
}

TEST(RouterUpdate, RandomChangesAnswerAsAFreshImage)
{
    run(1, false, 1000);
}

TEST(RouterUpdate, RandomChangesWithOverlapsDenied)
{
    run(2, true, 1000);
}

} // namespace
} // namespace discovery
