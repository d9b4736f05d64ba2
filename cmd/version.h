/*
 * version.h - what --version and the startup log line call this build.
 */
#ifndef LB_CMD_VERSION_H
#define LB_CMD_VERSION_H

#ifndef LAZYBACKEND_VERSION
#define LAZYBACKEND_VERSION "0.1.0"
#endif

/* The commit this binary was built from (git describe, "unknown" outside a checkout). */
const char *lazybackend_commit(void);

/* --version's lines: ours with the commit, then the linked libraries' versions (version.c). */
void print_version(void);

#endif
