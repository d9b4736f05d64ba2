// anchor_protobuf.cc - the yardstick the decoder is measured against: Google protobuf C++
// parsing the same request bytes into an Arena (parse only: nothing is resolved or printed).
// Built and run by scripts/bench only (libprotobuf-dev is a benchmark-only dependency, not a
// build one), so every decode figure can be printed as a ratio to a general protobuf library
// on the same machine in the same run. Usage: anchor_protobuf FILE [SECONDS]
// Prints "MB/s samples/s" on one line.
// anchor_protobuf --capture FILE: the process the CLI is compared with, end to end: it maps a
// capture of length-prefixed requests (as `lazybackend decode` reads one) and parses each
// request once into its own Arena; the caller times the whole process.
#include <google/protobuf/arena.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "profiles_service.pb.h"

// The CPU time of this process: on a shared machine, wall-clock time also counts the time
// other processes had the core, which moved the figures by half between runs.
static double cpu_seconds()
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

using Request = opentelemetry::proto::collector::profiles::v1development::ExportProfilesServiceRequest;

// Every request of a capture (4-byte big-endian length, then the request), parsed once each.
static int parse_capture(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 4) {
        std::fprintf(stderr, "%s: cannot read it\n", path);
        return 1;
    }
    size_t n = (size_t)st.st_size;
    void *map = mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return 1;
    const unsigned char *p = (const unsigned char *)map;
    size_t pos = 0, requests = 0;
    while (n - pos >= 4) {
        size_t len = (size_t)p[pos] << 24 | (size_t)p[pos + 1] << 16 | (size_t)p[pos + 2] << 8 | p[pos + 3];
        pos += 4;
        if (len > n - pos)
            break;
        google::protobuf::Arena arena;
        Request *r = google::protobuf::Arena::CreateMessage<Request>(&arena);
        if (!r->ParseFromArray(p + pos, (int)len)) {
            std::fprintf(stderr, "%s: request %zu: parse failed\n", path, requests);
            return 1;
        }
        pos += len;
        requests++;
    }
    munmap(map, n);
    return pos == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && std::string(argv[1]) == "--capture")
        return parse_capture(argv[2]);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE [SECONDS]\n", argv[0]);
        return 2;
    }
    double budget = argc > 2 ? std::atof(argv[2]) : 2.0;
    std::ifstream f(argv[1], std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    unsigned long long samples = 0;
    {
        google::protobuf::Arena arena;
        Request *r = google::protobuf::Arena::CreateMessage<Request>(&arena);
        if (!r->ParseFromArray(bytes.data(), (int)bytes.size())) {
            std::fprintf(stderr, "%s: parse failed\n", argv[1]);
            return 1;
        }
        for (const auto &rp : r->resource_profiles())
            for (const auto &sp : rp.scope_profiles())
                for (const auto &p : sp.profiles())
                    samples += (unsigned long long)p.samples_size();
    }
    double t0 = cpu_seconds();
    unsigned long iterations = 0;
    double seconds;
    do {
        google::protobuf::Arena arena;
        Request *r = google::protobuf::Arena::CreateMessage<Request>(&arena);
        if (!r->ParseFromArray(bytes.data(), (int)bytes.size()))
            return 1;
        iterations++;
        seconds = cpu_seconds() - t0;
    } while (seconds < budget);
    std::printf("%.3f %.0f\n", (double)bytes.size() * (double)iterations / seconds / 1e6,
                (double)samples * (double)iterations / seconds);
    return 0;
}
