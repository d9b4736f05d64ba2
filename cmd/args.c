/*
 * args.c - see args.h: one option's value read and checked, from an argument or from an
 * environment variable, and the walk over the LAZYBACKEND_* variables.
 *
 * Why apart from options.c: options.c says which options exist and what they set; this file
 * says how a value is read, in one way for both sources, so that an option matched in
 * options.c works from the environment without being named anywhere else.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/args.h"

#define ENV_PREFIX "LAZYBACKEND_"

/* SIZE: a count of bytes with an optional K/M/G (KiB, MiB, GiB) suffix, powers of 1024. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned long long mult = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mult = 1ull << 10; break;
        case 'm': case 'M': mult = 1ull << 20; break;
        case 'g': case 'G': mult = 1ull << 30; break;
        default: return -1;
        }
        end++;
        if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
            end += strlen(end);
        if (*end)
            return -1;
    }
    if (v > ULLONG_MAX / mult)
        return -1;
    *out = (size_t)(v * mult);
    return 0;
}

/* A plain decimal number up to `max` (strtoul alone would take "-1", "12x" and overflow). */
static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Remembers an option given on the command line, so that its variable is ignored. */
static void note_given(struct args *a, const char *name)
{
    if (a->env_var)
        return;
    for (size_t k = 0; k < a->n_given; k++)
        if (strcmp(a->given[k], name) == 0)
            return;
    if (a->n_given < MAX_OPTION_NAMES)
        a->given[a->n_given++] = name;
}

/* Where the option being parsed came from, for messages: "--sink" or "LAZYBACKEND_SINK". */
const char *opt_source(const struct args *a)
{
    return a->env_var ? a->env_var : a->name;
}

/* True when the current argument is option `name`, alone or as "--name=value". */
bool opt(struct args *a, const char *name)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || (arg[n] != 0 && arg[n] != '='))
        return false;
    a->name = name;
    note_given(a, name);
    return true;
}

/* A switch's value in the environment: 1/true/yes or 0/false/no (any case). */
static bool env_switch_value(struct args *a)
{
    static const char *const on[] = { "1", "true", "yes" }, *const off[] = { "0", "false", "no" };
    for (size_t k = 0; k < 3; k++) {
        if (strcasecmp(a->env_value, on[k]) == 0)
            return true;
        if (strcasecmp(a->env_value, off[k]) == 0)
            return false;
    }
    fprintf(stderr, "lazybackend: invalid value for %s: '%s' (a switch: 1, true, yes or 0, false, "
            "no)\n", a->env_var, a->env_value);
    exit(2);
}

/* True when the current argument is the switch `name` (switches take no "=value"), or the
 * variable naming it says yes; a variable saying no is matched (switch_off) but sets
 * nothing. */
bool flag(struct args *a, const char *name)
{
    if (strcmp(a->argv[a->i], name) != 0)
        return false;
    note_given(a, name);
    if (a->env_var && !env_switch_value(a)) {
        a->switch_off = true;
        return false;
    }
    return true;
}

/* The matched option's value: after its '=', or the next argument. A missing value ends the
 * process (exit 2), as every bad option does: nothing has been set up yet. */
const char *opt_value(struct args *a)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(a->name);
    if (a->env_var)
        return a->env_value;
    if (arg[n] == '=')
        return arg + n + 1;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "lazybackend: %s needs a value\n", a->name);
        exit(2);
    }
    return a->argv[++a->i];
}

/* A value the option cannot take: said with the option's name (or its variable's), and the
 * process ends. */
void bad_value(const struct args *a, const char *value)
{
    fprintf(stderr, "lazybackend: invalid value for %s: '%s' (see --help)\n", opt_source(a), value);
    exit(2);
}

/* A value that must not be empty (a path, a directory). */
const char *opt_nonempty(struct args *a)
{
    const char *v = opt_value(a);
    if (!*v)
        bad_value(a, v);
    return v;
}

/* A number in [min, max]. */
unsigned opt_uint(struct args *a, unsigned min, unsigned max)
{
    const char *v = opt_value(a);
    unsigned u;
    if (parse_uint(v, max, &u) || u < min)
        bad_value(a, v);
    return u;
}

/* A SIZE in [min, max]. */
size_t opt_size(struct args *a, size_t min, size_t max)
{
    const char *v = opt_value(a);
    size_t z;
    if (parse_size(v, &z) || z < min || z > max)
        bad_value(a, v);
    return z;
}

/* One of `n` words: its index. */
size_t opt_choice(struct args *a, const char *const *words, size_t n)
{
    const char *v = opt_value(a);
    for (size_t k = 0; k < n; k++)
        if (strcmp(v, words[k]) == 0)
            return k;
    bad_value(a, v);
    return 0;
}

/* Copies of environment values cut into lists: struct config points into them for the
 * process's life, and they stay reachable from here. */
struct kept_copy {
    struct kept_copy *next;
    char text[];
};
static struct kept_copy *kept_copies;

/* A repeatable option's values: the argument's one value, or each non-empty element of the
 * variable's comma-separated list (at most `max`). How many, into `out`. */
size_t opt_values(struct args *a, const char **out, size_t max)
{
    if (!a->env_var) {
        out[0] = opt_value(a);
        return 1;
    }
    size_t len = strlen(a->env_value), n = 0;
    struct kept_copy *c = malloc(sizeof *c + len + 1);
    if (!c) {
        fprintf(stderr, "lazybackend: out of memory\n");
        exit(1);
    }
    memcpy(c->text, a->env_value, len + 1);
    c->next = kept_copies;
    kept_copies = c;
    for (char *rest = c->text, *piece; (piece = strsep(&rest, ",")) != NULL; ) {
        if (!*piece)
            continue;
        if (n == max) {
            fprintf(stderr, "lazybackend: %s lists more than %zu values\n", a->env_var, max);
            exit(2);
        }
        out[n++] = piece;
    }
    return n;
}

/* "LAZYBACKEND_GRPC_ADDRESS" -> "--grpc-address" (upper case, digits and '_' only); false
 * for any other name. */
static bool option_of_variable(const char *var, size_t len, char *out, size_t outlen)
{
    size_t p = strlen(ENV_PREFIX);
    if (len <= p || len - p + 3 > outlen)
        return false;
    memcpy(out, "--", 2);
    for (size_t k = p; k < len; k++) {
        char c = var[k];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
        out[2 + k - p] = c == '_' ? '-' : (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[2 + len - p] = 0;
    return true;
}

void args_from_environment(const struct args *cli, bool (*parse)(struct args *a, void *ud), void *ud)
{
    extern char **environ;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0 || !eq)
            continue;
        char var[128], name[128];
        size_t len = (size_t)(eq - *e);
        snprintf(var, sizeof var, "%.*s", (int)len, *e);
        bool known = option_of_variable(*e, len, name, sizeof name);
        bool given = false;
        for (size_t k = 0; known && k < cli->n_given; k++)
            given |= strcmp(cli->given[k], name) == 0;
        if (given || !eq[1])
            continue;
        char *argv1[] = { name };
        struct args a = { .argc = 1, .argv = argv1, .env_var = var, .env_value = eq + 1 };
        if (!known || !(parse(&a, ud) || a.switch_off))
            fprintf(stderr, "lazybackend: ignoring %s: it names no option (LAZYBACKEND_ and an "
                    "option's name, e.g. LAZYBACKEND_GRPC_ADDRESS)\n", var);
    }
}

