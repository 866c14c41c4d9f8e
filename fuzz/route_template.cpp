// route_template.cpp: fuzzes the template compiler and the converters.
//
// The input's first line is compiled as a template (and so is the whole
// input); when valid, every further line is a request path matched against
// it twice: by a reference written as Starlette's regex would match it
// (fuzz_common.hpp), by a router holding that one route, and by the two
// matchers of templates (templateMatches, templateTextMatches).  All must
// agree, the router taking too a path that the route matches with its
// trailing slash toggled.
#include "fuzz_common.hpp"
#include "methods.hpp"
#include "route_template.hpp"
#include "router.hpp"
#include "snapshot.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace {

using discovery::Segment;
using discovery::SegmentKind;
using discovery::Template;

bool isIdentifier(std::string_view s)
{
    if (s.empty()) {
        return false;
    }
    for (size_t i = 0; i < s.size(); i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                     || c == '_';
        if (!alpha && (i == 0 || c < '0' || c > '9')) {
            return false;
        }
    }
    return true;
}

// What any compiled template must look like.
void checkTemplate(std::string_view text, const Template &tpl)
{
    fuzz::check(!tpl.segments.empty(), "valid template without segments");
    fuzz::check(text[0] == '/', "valid template without leading slash");
    size_t paths = 0;

    for (size_t i = 0; i < tpl.segments.size(); i++) {
        const Segment &seg = tpl.segments[i];
        // views into the compiled text, never copies
        fuzz::check(seg.text.empty()
                        || (seg.text.data() >= text.data()
                            && seg.text.data() + seg.text.size()
                                   <= text.data() + text.size()),
                    "segment text outside the template");
        if (seg.kind == SegmentKind::Literal) {
            for (unsigned char c : seg.text) {
                fuzz::check(c > 0x20 && c != 0x7f && c != '/' && c != '?'
                                && c != '#' && c != '{' && c != '}',
                            "bad byte in a literal", text);
            }
        } else {
            fuzz::check(isIdentifier(seg.text), "bad parameter name", text);
        }
        if (seg.kind == SegmentKind::Path) {
            paths++;
            fuzz::check(tpl.segments.size() - i - 1
                            <= discovery::kMaxSegmentsAfterPath,
                        "too many segments after {:path}", text);
        }
    }
    fuzz::check(paths <= 1, "more than one {:path}", text);

    // the shape is itself a valid template of as many segments
    std::string shape = discovery::templateShape(tpl);
    Template again;
    fuzz::check(discovery::compileTemplate(shape, again)
                    && again.segments.size() == tpl.segments.size(),
                "the shape does not compile", shape);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string input(reinterpret_cast<const char *>(data), size);
    Template tpl;
    std::string reason;

    // the whole input, newlines and all: only checks it compiles sanely
    if (discovery::compileTemplate(input, tpl, &reason)) {
        checkTemplate(input, tpl);
    } else {
        fuzz::check(!reason.empty(), "rejected without a reason");
    }

    std::vector<std::string_view> lines = fuzz::lines(input);
    std::string text(lines[0]);

    if (!discovery::compileTemplate(text, tpl)) {
        return 0;
    }
    checkTemplate(text, tpl);

    discovery::Snapshot snap;
    discovery::Service svc;
    discovery::Route route;
    svc.name = "svc";
    svc.upstream = "up";
    svc.state = discovery::ServiceState::Healthy;
    route.path = text;
    route.methods = discovery::kGet | discovery::kPost;
    svc.routeSet.routes.push_back(route);
    snap.services.push_back(std::move(svc));
    auto router = discovery::Router::build(snap);

    for (size_t i = 1; i < lines.size(); i++) {
        std::string_view path = lines[i];
        bool want = fuzz::referenceMatch(tpl, path);

        // the matchers of the API's explain and of the router's pins
        fuzz::check(discovery::templateMatches(tpl, path) == want,
                    "templateMatches and reference disagree",
                    text + " <- " + std::string(path));
        fuzz::check(discovery::templateTextMatches(text, path) == want,
                    "templateTextMatches and reference disagree",
                    text + " <- " + std::string(path));

        // a path the route does not match, but does with its trailing
        // slash toggled, goes to it whatever the method
        std::string other(path);
        if (other.size() > 1 && other.back() == '/') {
            other.pop_back();
        } else if (other.size() > 1 && other.size() < 2048) {
            other += '/'; // the router copies no longer path to retry
        }
        bool toggled = !want && path.size() > 1 && path[0] == '/'
                       && other != path && fuzz::referenceMatch(tpl, other);

        for (const char *method : {"GET", "POST", "PUT"}) {
            discovery::Match m = router->match(method, path, false);
            auto expect = toggled ? discovery::MatchStatus::Found
                          : !want ? discovery::MatchStatus::NotFound
                          : method[1] == 'U'
                              ? discovery::MatchStatus::NotAllowed
                              : discovery::MatchStatus::Found;
            if (m.status != expect) {
                fuzz::fail("router and reference disagree",
                           text + " <- " + std::string(path) + " "
                               + method);
            }
            if (expect == discovery::MatchStatus::Found) {
                fuzz::check(m.route == text && m.service == "svc",
                            "found the wrong route");
            }
        }
    }

    return 0;
}
