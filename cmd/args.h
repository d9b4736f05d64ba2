/*
 * args.h - reading the options of `lazybackend [serve]` and `decode`: whether the argument
 * being parsed is a given option (opt, flag), its value checked (opt_uint, opt_size, ...),
 * and the same for each LAZYBACKEND_* environment variable (args_from_environment).
 *
 * Why one reader for both sources: options.c matches every option once, with opt() or
 * flag(); an environment variable is handed to that same matching as a one-argument vector
 * (its option's bare name, the value beside it), so every option can come from a systemd
 * EnvironmentFile= without a second list of options. Every bad value ends the process with
 * status 2, naming the option, or the variable it came from: nothing is set up yet.
 */
#ifndef LB_CMD_ARGS_H
#define LB_CMD_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define MAX_OPTION_NAMES 96

/* The argument vector being parsed and the option just recognised, so that an option is
 * named once: where it is matched (opt) and no more where its value is read and checked.
 * An environment variable is parsed as a vector of one argument, its option's bare name,
 * with the value beside it (env_var set). */
struct args {
    int argc;
    char **argv;
    int i;              /* the current argument */
    const char *name;   /* the option opt() matched last */
    const char *env_var;     /* parsing the environment: the variable's name, else NULL */
    const char *env_value;   /* ... and its value */
    bool switch_off;         /* ... a switch it names, set to false (0, no, false) */
    const char *given[MAX_OPTION_NAMES];   /* options on the command line: they win */
    size_t n_given;
};

/* True when the current argument is option `name`, alone or as "--name=value" (from the
 * environment: the variable names it). Remembers it as given on the command line. */
bool opt(struct args *a, const char *name);

/* True when the current argument is the switch `name` (switches take no "=value"), or the
 * variable naming it says 1/true/yes; one saying 0/false/no is matched (switch_off) but
 * sets nothing; any other word ends the process. */
bool flag(struct args *a, const char *name);

/* The matched option's value: after its '=', the next argument, or the variable's value. A
 * missing value ends the process. */
const char *opt_value(struct args *a);
/* ... not empty (a path, a directory). */
const char *opt_nonempty(struct args *a);
/* ... a number in [min, max]. */
unsigned opt_uint(struct args *a, unsigned min, unsigned max);
/* ... a SIZE (K, M, G suffixes, powers of 1024) in [min, max]. */
size_t opt_size(struct args *a, size_t min, size_t max);
/* ... one of `n` words: its index. */
size_t opt_choice(struct args *a, const char *const *words, size_t n);
/* A repeatable option's values: the argument's one value, or each non-empty element of the
 * variable's comma-separated list (at most `max`). How many, into `out`. */
size_t opt_values(struct args *a, const char **out, size_t max);

/* Where the option being parsed came from, for messages: "--sink" or "LAZYBACKEND_SINK". */
const char *opt_source(const struct args *a);

/* A value the option cannot take: said with opt_source(), and the process ends (status 2). */
void bad_value(const struct args *a, const char *value);

/* Every LAZYBACKEND_* variable ("LAZYBACKEND_GRPC_ADDRESS" for --grpc-address), handed to
 * `parse` as its option, unless the command line gave that option (`cli`, after parsing it,
 * remembers which). An empty value is no value: the option keeps its default. A variable
 * that names no option (parse returns false) is said on stderr, and ignored. */
void args_from_environment(const struct args *cli, bool (*parse)(struct args *a, void *ud), void *ud);

#endif
