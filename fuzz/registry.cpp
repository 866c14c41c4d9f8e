// registry.cpp: fuzzes what the registry reads from etcd: the pages of the
// prefix's read (RangeRead) and the watch stream, with its fragments.
//
// The input is records separated by 0x1e; a record's first byte says
// what the rest is:
//   'r'  the answer to the read's next page
//   's'  (no rest) that page was over the cap: fewer keys
//   'c'  an answer other than 200 to a page: a compaction begins again
//   'w'  bytes of the watch stream, fed and read message by message
//   'b'  (no rest) a new read begins
//   'l'  a lease's answer (grant, keepalive, time to live), then a round
//        of looks at the other leases that claim services
// Properties: a read that ends took each key once, of the prefix only, at
// its first page's revision; the next request always goes on from after
// the keys taken; the table's revision never goes back while watching; a
// table of a share=off gateway, given the same, keeps no claims or routes
// and the same services; a round of looks takes each other lease once.
#include "registry.hpp"
#include "error.hpp"
#include "fuzz_common.hpp"

#include <set>
#include <string>
#include <string_view>

namespace {

const std::string kPrefix = "/p/";

void watch(discovery::RegistryTable &table,
           discovery::RegistryTable &unshared, discovery::WatchStream &stream,
           std::string_view bytes)
{
    stream.feed(bytes);
    std::string message;
    for (;;) {
        try {
            if (!stream.next(message)) {
                return;
            }
        } catch (const discovery::Error &) {
            stream.clear(); // the watch is made again
            return;
        }
        try {
            discovery::WatchMessage m = discovery::parseWatchMessage(message);
            int64_t before = table.revision();
            if (!m.canceled) {
                try {
                    unshared.apply(m);
                } catch (const discovery::Error &) {
                }
                table.apply(m);
            }
            fuzz::check(table.revision() >= before, "the revision went back");
        } catch (const discovery::Error &) {
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string_view in(reinterpret_cast<const char *>(data), size);
    discovery::RangeRead read(kPrefix, true);
    discovery::RegistryTable table(kPrefix, true);
    table.setConfigured(std::string_view("a\0b\0svc\0", 8));
    discovery::RegistryTable unshared(kPrefix, false);
    discovery::WatchStream stream;

    while (!in.empty()) {
        size_t end = in.find('\x1e');
        std::string_view record = in.substr(0, end);
        in.remove_prefix(end == std::string_view::npos ? in.size() : end + 1);
        if (record.empty()) {
            continue;
        }
        std::string_view rest = record.substr(1);

        switch (record[0]) {
        case 'r': {
            discovery::RangeAnswer page;
            try {
                page = discovery::parseRangeAnswer(rest);
            } catch (const discovery::Error &) {
                read.begin();
                break;
            }
            int64_t revision =
                read.revision() ? read.revision() : page.revision;
            bool whole;
            try {
                whole = read.add(page, rest.size());
            } catch (const discovery::Error &) {
                read.begin();
                break;
            }
            fuzz::check(read.revision() == revision, "the read's revision");
            if (!whole) {
                // the next page asks at the first's revision
                fuzz::check(read.request().find("\"revision\"")
                                != std::string::npos,
                            "a later page not at the read's revision");
                break;
            }
            discovery::RangeAnswer all = read.result();
            std::set<std::string> keys;
            for (const discovery::KeyValue &kv : all.kvs) {
                fuzz::check(kv.key.compare(0, kPrefix.size(), kPrefix) == 0,
                            "a key outside the prefix", kv.key);
                fuzz::check(keys.insert(kv.key).second, "a key taken twice",
                            kv.key);
                fuzz::check(!kv.oversized || kv.value.empty(),
                            "a value read without it", kv.key);
            }
            fuzz::check(all.revision == revision, "the result's revision");
            table.load(all);
            unshared.load(all);
            fuzz::check(table.revision() == revision, "the table's revision");
            stream.clear();
            break;
        }
        case 's': {
            int64_t limit = read.limit();
            bool smaller = read.smaller();
            // fewer keys, or one key without its value
            fuzz::check(smaller ? (read.limit() < limit || limit == 1)
                                      && read.limit() >= 1
                                : limit == 1,
                        "smaller");
            break;
        }
        case 'c':
            if (discovery::compactedAnswer(rest)) {
                read.begin();
            }
            break;
        case 'w':
            watch(table, unshared, stream, rest);
            break;
        case 'b':
            read.begin();
            break;
        case 'l': {
            // a lease's answer, then a round of looks at the others'
            int64_t lease = 0, ttl = 0;
            try {
                discovery::parseLeaseAnswer(rest, lease, ttl);
                fuzz::check(lease > 0, "an answer's lease");
            } catch (const discovery::Error &) {
            }
            size_t looks = 0;
            for (int64_t l = table.claimantAfter(lease, 0), last = 0; l != 0;
                 last = l, l = table.claimantAfter(lease, l)) {
                fuzz::check(l > last && l != lease, "a look out of turn");
                fuzz::check(++looks <= table.pollers().size(),
                            "a round of looks that does not end");
            }
            break;
        }
        case 'o': {
            // the overrides' txn answer: written, or a revision found
            int64_t found = -1;
            try {
                if (!discovery::parseOverridesAnswer(rest, found)) {
                    fuzz::check(found >= 0, "a revision found below 0");
                }
            } catch (const discovery::Error &) {
            }
            fuzz::check(table.overridesRevision() >= 0,
                        "the overrides' revision below 0");
            break;
        }
        }
        fuzz::check(unshared.pollers().empty() && unshared.routes().empty(),
                    "share=off kept a claim or routes");
        fuzz::check(unshared.entries().size() == table.entries().size()
                        && unshared.version() == table.version(),
                    "share=off changed the services");
        fuzz::check(read.limit() >= 1
                        && read.limit() <= discovery::RangeRead::kMaxLimit,
                    "the limit");
    }
    return 0;
}
