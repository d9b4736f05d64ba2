/*
 * usdt_child.c - bpftrace as the bridge's child: the built-in script, the file the probes
 * are in, starting it, and reading what its errors mean.
 *
 * Why the target path is spelled out: bpftrace 0.17 (Debian 12) resolves USDT arguments
 * only from a plain path; with an empty or wildcard path, or /proc/PID/exe, or a
 * /proc/PID/root/... path, it fails with "couldn't get argument 0". So with --pid the path is
 * the process's executable as /proc/PID/exe points to it, and --binary names another file
 * (a shared library holding the probes). Names that go into the script are checked to be
 * what bpftrace's probe syntax can take, so no option can change the script's meaning.
 *
 * Why fork and exec by hand: the child needs its own process group (a Ctrl-C in the terminal
 * reaches only the bridge, which then stops bpftrace with one SIGINT and reads its output to
 * the end; a second SIGINT would kill bpftrace mid-way), must die if the bridge is killed
 * (PR_SET_PDEATHSIG), and must not inherit the bridge's blocked signals (signalfd) or its
 * ignored SIGPIPE. An exec failure comes back through a close-on-exec pipe, so "bpftrace is
 * not installed" is an error at start, not an exit status to guess from.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/usdt_internal.h"

/* Characters a path may have in a probe (usdt:PATH:provider:name). */
static bool path_ok(const char *p)
{
    if (p[0] != '/')
        return false;
    for (; *p; p++)
        if (!strchr("/._-+@~", *p) && !((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
            return false;
    return true;
}

int usdt_target_path(const struct usdt_config *c, char *path, size_t len, char *err, size_t errlen)
{
    struct stat st;
    if (c->binary) {
        bool found = stat(c->binary, &st) == 0;
        if (!found || !S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "--binary %s: %s", c->binary, found ? "not a regular file" : strerror(errno));
            return -1;
        }
        if (!realpath(c->binary, path) || strlen(path) >= len) {
            snprintf(err, errlen, "--binary %s: %s", c->binary, strerror(errno));
            return -1;
        }
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/%ld/exe", c->pid);
        ssize_t n = readlink(link, path, len - 1);
        if (n < 0) {
            snprintf(err, errlen, "--pid %ld: cannot read its executable (%s): %s", c->pid, link,
                     errno == ENOENT ? "no such process" : strerror(errno));
            return -1;
        }
        path[n] = 0;
        if ((size_t)n >= len - 1 || strstr(path, " (deleted)") || stat(path, &st) != 0) {
            snprintf(err, errlen, "--pid %ld: its executable %s is not reachable from here (deleted, or in another "
                     "mount namespace): give --binary", c->pid, path);
            return -1;
        }
    }
    if (!path_ok(path)) {
        snprintf(err, errlen, "%s: bpftrace's probe syntax cannot name this path (use --script)", path);
        return -1;
    }
    return 0;
}

int usdt_build_script(const struct usdt_config *c, const char *path, struct buf *out, char *err, size_t errlen)
{
    /* the reqid as a string (str(arg0): a char pointer) or an exact integer */
    const char *id_fmt = c->reqid_int ? "%llu" : "\\\"%s\\\"";
    const char *id_arg = c->reqid_int ? "arg0" : "str(arg0)";
    bool ok = buf_printf(out,
                         "usdt:%s:%s:%s {\n"
                         "  printf(\"{\\\"event\\\":\\\"request_start\\\",\\\"reqid\\\":%s,\\\"timestamp\\\":%%lld}\\n\",\n"
                         "         %s, arg1);\n"
                         "}\n",
                         path, c->provider, c->start_probe, id_fmt, id_arg) &&
              buf_printf(out,
                         "usdt:%s:%s:%s {\n"
                         "  printf(\"{\\\"event\\\":\\\"request_end\\\",\\\"reqid\\\":%s,\\\"start\\\":%%lld,"
                         "\\\"duration\\\":%%lld}\\n\",\n"
                         "         %s, arg1, arg2);\n"
                         "}\n",
                         path, c->provider, c->end_probe, id_fmt, id_arg) &&
              buf_putc(out, 0);
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    out->len--;   /* the NUL stays after the text */
    return 0;
}

int usdt_spawn(const struct usdt_config *c, const char *script, struct usdt_child *ch, char *err, size_t errlen)
{
    char pid[32];
    const char *argv[12];
    int n = 0;
    argv[n++] = c->bpftrace;
    argv[n++] = "-f";
    argv[n++] = "json";
    argv[n++] = "-B";
    argv[n++] = "line";
    if (c->pid) {
        snprintf(pid, sizeof pid, "%ld", c->pid);
        argv[n++] = "-p";
        argv[n++] = pid;
    }
    if (c->script) {
        argv[n++] = c->script;
    } else {
        argv[n++] = "-e";
        argv[n++] = script;
    }
    argv[n] = NULL;

    int out[2] = { -1, -1 }, errp[2] = { -1, -1 }, status[2] = { -1, -1 };
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(status, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make pipes for bpftrace: %s", strerror(errno));
        goto fail;
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        snprintf(err, errlen, "cannot start bpftrace: fork: %s", strerror(errno));
        goto fail;
    }
    if (child == 0) {   /* only async-signal-safe calls from here to exec */
        sigset_t none;
        sigemptyset(&none);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(errp[1], 2) < 0)
            _exit(127);
        execvp(argv[0], (char *const *)argv);
        int e = errno;
        ssize_t w = write(status[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(status[1]);
    status[1] = -1;
    int e = 0;
    ssize_t got;
    do
        got = read(status[0], &e, sizeof e);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof e) {
        waitpid(child, NULL, 0);
        snprintf(err, errlen, "cannot run %s: %s%s", c->bpftrace, strerror(e),
                 e == ENOENT ? " (install it: apt-get install bpftrace; or give --bpftrace PATH)" : "");
        goto fail;
    }
    close(status[0]);
    close(null);
    close(out[1]);
    close(errp[1]);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);
    ch->pid = child;
    ch->out_fd = out[0];
    ch->err_fd = errp[0];
    return 0;
fail:;
    int fds[] = { null, out[0], out[1], errp[0], errp[1], status[0], status[1] };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return -1;
}

static bool has(const char *line, size_t len, const char *what)
{
    return memmem(line, len, what, strlen(what)) != NULL;
}

bool usdt_harmless_stderr(const char *line, size_t len)
{
    return has(line, len, "couldn't set RLIMIT_MEMLOCK") || has(line, len, "failed to detach probe") ||
           has(line, len, "/tracing/uprobe_events): No such file");
}

const char *usdt_startup_hint(const char *line)
{
    size_t n = strlen(line);
    if (has(line, n, "root user") || has(line, n, "Operation not permitted") || has(line, n, "Permission denied"))
        return "bpftrace needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE): run it as root";
    if (has(line, n, "No such process"))
        return "the process to trace does not exist (any more)";
    if (has(line, n, "No probes to attach") || has(line, n, "Attachment failed") || has(line, n, "probe") ||
        has(line, n, "couldn't get argument") || has(line, n, "does not exist"))
        return "the probes were not found: check --provider, --start-probe, --end-probe and --binary "
               "(`bpftrace -l 'usdt:PATH:*'` lists a file's probes)";
    return NULL;
}
