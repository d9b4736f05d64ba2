/*
 * numfmt.c - the double formatter of numfmt.h. It runs for every double attribute a sink
 * shows, so it tries the short precisions first: most values read back at %.15g.
 */
#include "sinks/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t copy_name(char out[NUMFMT_DOUBLE_MAX], const char *name)
{
    size_t n = strlen(name);
    memcpy(out, name, n + 1);
    return n;
}

size_t numfmt_double(char out[NUMFMT_DOUBLE_MAX], double d)
{
    if (isnan(d))
        return copy_name(out, "NaN");
    if (isinf(d))
        return copy_name(out, d > 0 ? "+Inf" : "-Inf");
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, NUMFMT_DOUBLE_MAX, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d)
            break;
    }
    return n > 0 && n < NUMFMT_DOUBLE_MAX ? (size_t)n : 0;
}
