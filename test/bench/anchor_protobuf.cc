// anchor_protobuf.cc - the yardstick the decoder is measured against: Google protobuf C++
// parsing the same request bytes into an Arena (parse only: nothing is resolved or printed).
// Built and run by scripts/bench only (libprotobuf-dev is a benchmark-only dependency, not a
// build one), so every decode figure can be printed as a ratio to a general protobuf library
// on the same machine in the same run. Usage: anchor_protobuf FILE [SECONDS]
// Prints "MB/s samples/s" on one line.
#include <google/protobuf/arena.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <time.h>

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

int main(int argc, char **argv)
{
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
