/*
 * pprof.h - the pprof encoder: resolved profiles events (events.h) in, gzipped profile.proto
 * files out, as `go tool pprof` reads them, one per sample type.
 *
 * Each sample becomes one pprof sample whose single value is its weight (the sum of its
 * values, or its number of timestamps: the weight `top` and `folded` use), with its frames as
 * locations (inlined lines kept together, leaf first), functions with names, system names,
 * files and start lines, mappings with their range, offset, file and build id, and its
 * attributes as labels (numbers as numeric labels with their unit). Profiles of the same sample
 * type and unit, from any resource, go into one file; its period is the first profile's, its
 * time and duration span them all. The field numbers are those of the public profile.proto
 * (github.com/google/pprof, proto/profile.proto).
 */
#ifndef LB_OTLP_PPROF_H
#define LB_OTLP_PPROF_H

#include <stdbool.h>
#include <stddef.h>

#include "otlp/events.h"

struct pprof_writer;

struct pprof_writer *pprof_writer_new(void);
void pprof_writer_free(struct pprof_writer *w);
struct otlp_consumer pprof_writer_consumer(struct pprof_writer *w);

/* Writes PREFIX.TYPE.pb.gz for each sample type seen (TYPE with characters other than
 * letters, digits, '.', '-' and '_' replaced by '_'; the unit added when two types share a
 * name), or, when `exact` and there is one type, the file PREFIX itself. *written counts the
 * files; on_file (may be NULL) is told each one written. 0, or -1 with the reason in err. */
typedef void (*pprof_file_fn)(void *ud, const char *path, const char *type, const char *unit);
int pprof_writer_write_files(struct pprof_writer *w, const char *prefix, bool exact, unsigned *written,
                             pprof_file_fn on_file, void *ud, char *err, size_t errlen);

#endif
