/*
 * fuzz_check.c - libFuzzer target: arbitrary bytes as an ExportProfilesServiceRequest through
 * the conformance checker (otlp/check.h), as `lazybackend check` and `serve --check` run it.
 *
 * Every input is checked with the default groups and with every group (the duplicate tests,
 * the orphan marks and the strict tables then run too), and pinned to each layout the detector
 * found to fit, since an ambiguous request is where one layout's tables meet another's bytes.
 * One checker is reused across inputs, as the server reuses it across requests, so state left
 * over from a large input meets a small one. Checked beyond the sanitizers: the report's
 * contract (the verdict agrees with the counts, the counts per rule add up, no more findings
 * described than asked, only rules of the enabled groups, every described finding one
 * printable line) and that the detector and the checker agree on what is readable.
 *
 * Built by `make fuzz`; run by scripts/fuzz and, briefly, by test/e2e/fuzz_smoke.sh.
 */
#include <stdint.h>
#include <string.h>

#include "otlp/check.h"
#include "otlp/detect.h"
#include "otlp/layout.h"
#include "test/fuzz/harness.h"

static struct otlp_checker *checker(void)
{
    static struct otlp_checker *c;
    if (!c) {
        c = otlp_checker_new();
        fuzz_must(c != NULL, "checker");
    }
    return c;
}

static const struct check_report *checked(const uint8_t *data, size_t size, unsigned groups, size_t kept,
                                          const struct otlp_layout *layout)
{
    struct check_options opt = { groups, kept, layout };
    const struct check_report *r = otlp_check(checker(), data, size, &opt);
    fuzz_must(r->verdict <= CHECK_NOMEM, "verdict");
    fuzz_must((r->verdict == CHECK_FINDINGS) == (r->n_findings > 0) || r->verdict >= CHECK_UNREADABLE,
              "verdict and findings disagree");
    fuzz_must(r->n_kept <= kept && r->n_kept <= r->n_findings, "more findings described than asked");
    uint64_t sum = 0;
    for (int i = 0; i < CR_COUNT; i++) {
        sum += r->per_rule[i];
        fuzz_must(r->per_rule[i] == 0 || (check_rules[i].group & groups), "a rule of a group that is off");
    }
    fuzz_must(sum == r->n_findings, "findings per rule do not add up");
    for (size_t i = 0; i < r->n_kept; i++) {
        const struct check_finding *f = &r->findings[i];
        char line[700];
        fuzz_must(f->rule < CR_COUNT, "rule id");
        check_finding_format(f, line, sizeof line);
        fuzz_must(fuzz_printable(line), "a finding is not one printable line");
    }
    char summary[1200];
    check_report_summary(r, summary, sizeof summary);
    fuzz_must(fuzz_printable(summary), "the summary is not one printable line");
    if (r->verdict == CHECK_UNREADABLE)
        fuzz_must(memchr(r->error, 0, sizeof r->error) != NULL && r->error[0], "unreadable without a reason");
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct otlp_detection det;
    int rc = otlp_detect(data, size, &det);
    const struct check_report *r = checked(data, size, CHECK_GROUPS_DEFAULT, 8, NULL);
    fuzz_must(rc != 0 || r->verdict != CHECK_UNREADABLE || strstr(r->error, "malformed"),
              "the detector reads a request the checker calls unreadable");
    fuzz_must(rc != 0 || strcmp(r->layout, det.layout->name) == 0, "checked in another layout than detected");
    checked(data, size, CHECK_GROUPS_ALL, 1000, NULL);
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT; i++)
        if (det.tried[i].fits && det.tried[i].layout != det.layout)
            checked(data, size, CHECK_GROUPS_ALL, 3, det.tried[i].layout);
    return 0;
}
