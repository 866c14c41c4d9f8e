// snapshot_seeds.cpp: writes seeds for the snapshot target into a directory
// (fuzz/run.sh runs it, so the seeds always match the current encoding).
#include "../samples.hpp"

#include <cstdio>
#include <string>

namespace {

void write(const std::string &dir, const char *name, unsigned char mode,
           const discovery::Bytes &blob)
{
    std::string path = dir + "/" + name;
    FILE *f = std::fopen(path.c_str(), "wb");

    if (f == nullptr) {
        std::perror(path.c_str());
        std::exit(1);
    }
    std::fputc(mode, f);
    std::fwrite(blob.data(), 1, blob.size(), f);
    std::fclose(f);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }

    std::string dir = argv[1];
    discovery::Snapshot snap = fuzz::sampleSnapshot();
    discovery::Snapshot empty;
    discovery::Snapshot small;

    small.generation = 1;
    small.services.push_back(snap.services[0]);

    write(dir, "gen-snapshot-raw", 0, discovery::encodeSnapshot(snap));
    write(dir, "gen-snapshot-fixed", 1, discovery::encodeSnapshot(snap));
    write(dir, "gen-small-fixed", 1, discovery::encodeSnapshot(small));
    write(dir, "gen-empty-fixed", 1, discovery::encodeSnapshot(empty));
    write(dir, "gen-routeset-fixed", 1,
          discovery::encodeRouteSet(fuzz::sampleRouteSet()));
    write(dir, "gen-edits-none", 2, {});
    // overwrite the service count's byte, then insert one into a path
    write(dir, "gen-edits-fixed", 3, {0, 32, 0, 2, 1, 40, 0, 'x'});
    return 0;
}
