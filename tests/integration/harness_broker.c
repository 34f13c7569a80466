/*
 * Integration test harness, the broker: its temp dir and configuration,
 * starting, stopping, restarting and killing it, reading its log, and the
 * sanitizer checks on that log when it exits. See harness.h.
 */
#include "harness.h"
#include "harness_internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* START_TIMEOUT_MS and STOP_TIMEOUT_MS are multiplied by rt_time_scale(). */
#define MAX_BROKERS      8
#define LOG_TAIL_LINES   250
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  10000

/* Every broker of the running test case, for rt_fail and the runner. */
static struct broker *g_brokers[MAX_BROKERS];

static char *read_file(const char *path, long from, long *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long size = ftell(f);
    if (from > size)
        from = size;
    if (from < 0)
        from = 0;
    if (fseek(f, from, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    long n = size - from;
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    if (len_out)
        *len_out = (long)got;
    return buf;
}

static void print_log_tail(const struct broker *b)
{
    long len = 0;
    char *text = read_file(b->log_path, 0, &len);
    if (!text) {
        fprintf(stderr, "(no broker log at %s)\n", b->log_path);
        return;
    }
    const char *start = text;
    int lines = 0;
    for (long i = len - 1; i >= 0; i--) {
        if (text[i] == '\n' && i != len - 1 && ++lines >= LOG_TAIL_LINES) {
            start = text + i + 1;
            break;
        }
    }
    fprintf(stderr, "----- broker log %s (port %d)%s -----\n%s\n----- end of broker log -----\n",
            b->log_path, b->port, start == text ? "" : ", last lines", start);
    free(text);
}

void harness_brokers_on_fail(void)
{
    for (int i = 0; i < MAX_BROKERS; i++) {
        struct broker *b = g_brokers[i];
        if (!b)
            continue;
        if (b->pid > 0) {
            kill(b->pid, SIGKILL);
            waitpid(b->pid, NULL, 0);
            b->pid = 0;
        }
        print_log_tail(b);
        fprintf(stderr, "(broker dir kept: %s)\n", b->dir);
        if (b->valgrind_log[0])
            fprintf(stderr, "(valgrind log: %s)\n", b->valgrind_log);
    }
}

void harness_brokers_free_all(void)
{
    for (int i = 0; i < MAX_BROKERS; i++) {
        if (g_brokers[i])
            broker_free(g_brokers[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* broker                                                                    */

static void register_broker(struct broker *b)
{
    for (int i = 0; i < MAX_BROKERS; i++) {
        if (!g_brokers[i]) {
            g_brokers[i] = b;
            return;
        }
    }
    FAIL("too many brokers in one test");
}

static void unregister_broker(struct broker *b)
{
    for (int i = 0; i < MAX_BROKERS; i++) {
        if (g_brokers[i] == b)
            g_brokers[i] = NULL;
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        FAIL("socket: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        FAIL("bind 127.0.0.1:0: %s", strerror(errno));
    socklen_t len = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        FAIL("getsockname: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static const char *plugin_path(void)
{
    const char *p = getenv("RTM_PLUGIN");
    if (!p || !*p)
        FAIL("RTM_PLUGIN is not set: run the tests through ctest, or set it to mosquitto_rtm.so");
    if (access(p, R_OK) != 0)
        FAIL("RTM_PLUGIN=%s: %s (is the plugin built?)", p, strerror(errno));
    return p;
}

/* Replaces every @DIR@ in `line` with the broker's dir, @PORT@ and
 * @PORT2@ with its ports. */
static void expand_dir(char *out, size_t size, const char *line, const struct broker *b)
{
    size_t o = 0;
    for (const char *p = line; *p;) {
        const char *with = NULL;
        size_t skip = 0;
        if (strncmp(p, "@DIR@", 5) == 0) {
            with = b->dir;
            skip = 5;
        } else if (strncmp(p, "@PORT@", 6) == 0) {
            with = rt_fmt("%d", b->port);
            skip = 6;
        } else if (strncmp(p, "@PORT2@", 7) == 0) {
            with = rt_fmt("%d", b->port2);
            skip = 7;
        }
        if (with) {
            int n = snprintf(out + o, size - o, "%s", with);
            if (n < 0 || (size_t)n >= size - o)
                FAIL("config line too long: %s", line);
            o += (size_t)n;
            p += skip;
        } else {
            if (o + 1 >= size)
                FAIL("config line too long: %s", line);
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

static void write_conf(struct broker *b, const struct broker_opts *opts)
{
    FILE *f = fopen(b->conf_path, "w");
    if (!f)
        FAIL("cannot write %s: %s", b->conf_path, strerror(errno));
    if (opts && opts->listeners) {
        for (const char *const *l = opts->listeners; *l; l++) {
            char line[1024];
            expand_dir(line, sizeof(line), *l, b);
            fprintf(f, "%s\n", line);
        }
    } else {
        fprintf(f, "listener %d 127.0.0.1\n", b->port);
    }
    fprintf(f, "allow_anonymous true\n");
    fprintf(f, "plugin %s\n", plugin_path());
    if (!(opts && opts->other_topics_default))
        fprintf(f, "plugin_opt_other_topics allow\n");
    /* With log_type all below: every line in a failed test's log, and the
     * debug lines formatted under the sanitizers too. */
    fprintf(f, "plugin_opt_debug_log true\n");
    bool own_listener = true;
    if (opts && opts->plugin_opts) {
        for (const char *const *o = opts->plugin_opts; *o; o++) {
            fprintf(f, "plugin_opt_%s\n", *o);
            if (strncmp(*o, "registry_listener", 17) == 0 && (*o)[17] == ' ')
                own_listener = false;
        }
    }
    if (own_listener && opts && opts->registry_listener)
        fprintf(f, "plugin_opt_registry_listener %s\n", opts->registry_listener);
    if (opts && opts->passwd_users)
        fprintf(f, "password_file %s/passwd\n", b->dir);
    if (opts && opts->extra_lines) {
        for (const char *const *l = opts->extra_lines; *l; l++) {
            char line[1024];
            expand_dir(line, sizeof(line), *l, b);
            fprintf(f, "%s\n", line);
        }
    }
    fprintf(f, "log_dest stderr\n");
    fprintf(f, "log_type all\n");
    if (geteuid() == 0)
        fprintf(f, "user root\n");
    if (fclose(f) != 0)
        FAIL("cannot write %s", b->conf_path);
}

/* The broker's environment: ours, plus the sanitizer runtime when asked. */
static char **child_env(void)
{
    const char *preload = getenv("RTM_PRELOAD");
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 6, sizeof(*env));
    if (!env)
        FAIL("out of memory");
    size_t k = 0;
    bool san = preload && *preload;
    for (size_t i = 0; i < n; i++) {
        if (san && (strncmp(environ[i], "LD_PRELOAD=", 11) == 0 ||
                    strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0 ||
                    strncmp(environ[i], "UBSAN_OPTIONS=", 14) == 0))
            continue;
        if (strncmp(environ[i], "no_proxy=", 9) == 0 || strncmp(environ[i], "NO_PROXY=", 9) == 0)
            continue;
        env[k++] = environ[i];
    }
    /* The plugin's libcurl must reach the mock JPush on loopback directly,
     * whatever proxy the environment names. */
    env[k++] = "no_proxy=127.0.0.1,localhost";
    env[k++] = "NO_PROXY=127.0.0.1,localhost";
    if (san) {
        static char ld[1100];
        snprintf(ld, sizeof(ld), "LD_PRELOAD=%s", preload);
        env[k++] = ld;
        env[k++] = "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0";
        env[k++] = "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1";
    }
    env[k] = NULL;
    return env;
}

/* ------------------------------------------------------------------------ */
/* valgrind (see harness.h)                                                  */

/* The source tree with a trailing '/', from this file's path (CMake compiles
 * it by its full path). valgrind prints source paths relative to it, so the
 * plugin's frames read "(plugin/core/dispatch.c:42)", and no other library's can. */
static const char *source_root(void)
{
    static const char tail[] = "tests/integration/harness_broker.c";
    const char *self = __FILE__;
    size_t n = strlen(self), t = strlen(tail);
    if (self[0] != '/' || n <= t || strcmp(self + n - t, tail) != 0)
        FAIL("RTM_VALGRIND: cannot tell the source tree from this file's path %s", self);
    return rt_fmt("%.*s", (int)(n - t), self);
}

static void spawn_valgrind(struct broker *b, const char *bin, char **env)
{
    const char *preload = getenv("RTM_PRELOAD");
    if (preload && *preload)
        FAIL("RTM_VALGRIND: the broker cannot run under valgrind with RTM_PRELOAD=%s (ASan)",
             preload);
    const char *v = getenv("RTM_VALGRIND");
    const char *valgrind = v[0] == '/' ? v : "/usr/bin/valgrind";
    if (access(valgrind, X_OK) != 0)
        FAIL("RTM_VALGRIND: %s: %s (is valgrind installed?)", valgrind, strerror(errno));
    const char *root = source_root();
    const char *supp = rt_fmt("%stests/integration/valgrind.supp", root);
    if (access(supp, R_OK) != 0)
        FAIL("RTM_VALGRIND: %s: %s", supp, strerror(errno));
    /* --keep-debuginfo: Mosquitto dlclose()s the plugin before it exits, and
     * the leak report needs the plugin's symbols. --num-callers: deep enough
     * to reach the plugin's frames under libcurl's and OpenSSL's. */
    char *argv[] = {(char *)valgrind,
                    "--tool=memcheck",
                    "--leak-check=full",
                    "--show-leak-kinds=definite,indirect,possible",
                    "--errors-for-leak-kinds=definite",
                    "--keep-debuginfo=yes",
                    "--num-callers=50",
                    (char *)rt_fmt("--fullpath-after=%s", root),
                    (char *)rt_fmt("--suppressions=%s", supp),
                    (char *)rt_fmt("--log-file=%s/valgrind-%%p.log", b->dir),
                    (char *)bin,
                    "-c",
                    b->conf_path,
                    NULL};
    b->pid = rt_spawn_logged(valgrind, argv, env, b->log_path);
    snprintf(b->valgrind_log, sizeof(b->valgrind_log), "%s/valgrind-%d.log", b->dir, (int)b->pid);
}

/* A line of a valgrind stack: "   at 0x...: fn (file:line)" or "(in object)". */
static bool frame_line(const char *line)
{
    const char *p = line + strspn(line, " ");
    return p != line && (strncmp(p, "at 0x", 5) == 0 || strncmp(p, "by 0x", 5) == 0);
}

/* A frame in the plugin: its sources (given --fullpath-after) or, without
 * debug info, its object file ("/mosquitto_rtm.so)"). */
static bool plugin_frame(const char *line, const char *object)
{
    return frame_line(line) &&
           (strstr(line, " (plugin/") || strstr(line, " (include/") || strstr(line, object));
}

/* Fails the test on any error or leak record of the broker's last valgrind
 * log with a frame in the plugin, printing each; counts the others. A record
 * is a run of "==pid== " lines up to an empty one; only those with a stack
 * are errors or leaks (the summaries have none). */
static void scan_valgrind(struct broker *b)
{
    if (!b->valgrind_log[0])
        return;
    char *text = read_file(b->valgrind_log, 0, NULL);
    if (!text)
        FAIL("no valgrind log at %s", b->valgrind_log);
    const char *base = strrchr(plugin_path(), '/');
    const char *object = rt_fmt("/%s)", base ? base + 1 : plugin_path());
    int ours = 0, other_leaks = 0, other_errors = 0;
    char first[600] = "";
    char *rec = NULL, *head = NULL, *frame = NULL;
    bool stack = false;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        /* Lines other than "==pid== ..." (e.g. "--pid-- " notes) are skipped. */
        char *content = line[0] == '=' && line[1] == '=' ? strstr(line + 2, "== ") : NULL;
        if (content)
            content += 3;
        bool end = !next || (content && !*content);
        if (content && *content) {
            if (!rec)
                rec = line;
            if (!head && strncmp(content, "Thread ", 7) != 0)
                head = content;
            stack = stack || frame_line(content);
            if (!frame && plugin_frame(content, object))
                frame = content;
        }
        if (!end || !rec)
            continue;
        if (stack && frame) {
            if (ours++ == 0)
                snprintf(first, sizeof(first), "\"%s\" %s", head ? head : "?",
                         frame + strspn(frame, " "));
            fprintf(stderr, "----- valgrind: through the plugin (%s) -----\n", b->valgrind_log);
            for (char *l = rec; l <= line; l += strlen(l) + 1)
                fprintf(stderr, "%s\n", l);
        } else if (stack && head && strstr(head, " lost in loss record ")) {
            other_leaks++;
        } else if (stack) {
            other_errors++;
        }
        rec = head = frame = NULL;
        stack = false;
    }
    free(text);
    if (other_leaks + other_errors > 0)
        printf("valgrind: %d leak and %d error record(s) wholly outside the plugin (Mosquitto, "
               "libc), not counted against it: %s\n",
               other_leaks, other_errors, b->valgrind_log);
    if (ours > 0)
        FAIL("valgrind: %d error/leak record(s) through the plugin (printed above); the first: "
             "%s",
             ours, first);
}

const char *rt_broker_bin(void)
{
    return env_or("RTM_BROKER", env_or("MOSQUITTO_BIN", "/usr/sbin/mosquitto"));
}

/* "mosquitto version 2.0.11", from the first place `bin -h` names its version
 * (2.1 also logs "mosquitto version 2.1.2 terminating", maybe first), read
 * within 5 s; "" when none came. */
static void broker_version(const char *bin, char *out, size_t size)
{
    out[0] = '\0';
    int fds[2];
    if (pipe(fds) != 0)
        return;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(bin, bin, "-h", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    char text[8192];
    size_t len = 0;
    int64_t deadline = now_mono_ms() + 5000;
    while (len < sizeof(text) - 1 && now_mono_ms() < deadline) {
        ssize_t n = read(fds[0], text + len, sizeof(text) - 1 - len);
        if (n == 0)
            break;
        if (n > 0)
            len += (size_t)n;
        else if (errno == EAGAIN || errno == EINTR)
            pause_ms(10);
        else
            break;
    }
    close(fds[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    text[len] = '\0';
    static const char label[] = "mosquitto version ";
    const char *v = strstr(text, label);
    if (v) {
        v += sizeof(label) - 1;
        snprintf(out, size, "%s%.*s", label, (int)strcspn(v, " \t\r\n"), v);
    }
}

bool rt_broker_at_least(int major, int minor)
{
    char version[200];
    broker_version(rt_broker_bin(), version, sizeof(version));
    int got_major = 0, got_minor = 0;
    CHECKF(sscanf(version, "mosquitto version %d.%d", &got_major, &got_minor) == 2,
           "cannot tell the version of %s", rt_broker_bin());
    return got_major > major || (got_major == major && got_minor >= minor);
}

bool rt_print_broker(void)
{
    const char *bin = rt_broker_bin();
    const char *from = getenv("RTM_BROKER") && *getenv("RTM_BROKER")         ? "RTM_BROKER"
                       : getenv("MOSQUITTO_BIN") && *getenv("MOSQUITTO_BIN") ? "MOSQUITTO_BIN"
                                                                             : "default";
    if (access(bin, X_OK) != 0) {
        printf("broker: %s (%s): %s; set RTM_BROKER to a mosquitto binary\n", bin, from,
               strerror(errno));
        return false;
    }
    char version[200];
    broker_version(bin, version, sizeof(version));
    printf("broker: %s (%s), %s\n", bin, from,
           version[0] ? version : "version unknown: `-h` printed no \"mosquitto version\"");
    return true;
}

static void spawn(struct broker *b)
{
    const char *bin = rt_broker_bin();
    char **env = child_env();
    if (rt_valgrind()) {
        spawn_valgrind(b, bin, env);
    } else {
        char *argv[] = {(char *)bin, "-c", b->conf_path, NULL};
        b->pid = rt_spawn_logged(bin, argv, env, b->log_path);
    }
    free(env);
}

static bool tcp_probe(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        len = sizeof(*in);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof(*in6);
    } else {
        FAIL("broker host %s is not an IP address", host);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&ss, len) == 0;
    close(fd);
    return ok;
}

/* 0: ready; 1: the port was taken; 2: exited (only when `expect_exit`);
 * fails the test otherwise. */
static int wait_ready(struct broker *b, long mark, bool expect_exit)
{
    char loaded[600];
    snprintf(loaded, sizeof(loaded), "Loading plugin: %s", plugin_path());
    int start_ms = START_TIMEOUT_MS * rt_time_scale();
    int64_t deadline = now_mono_ms() + start_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(b->pid, &status, WNOHANG);
        if (r == b->pid) {
            b->pid = 0;
            if (broker_log_contains(b, mark, "Address already in use"))
                return 1;
            if (expect_exit) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                    FAIL("broker exited with status 0, expected a start-up failure");
                return 2;
            }
            FAIL("broker exited during start-up (status 0x%x)", status);
        }
        if (tcp_probe(b->host, b->port) && broker_log_contains(b, mark, loaded) &&
            broker_log_contains(b, mark, " running")) {
            if (expect_exit)
                FAIL("broker started, but was expected to refuse its configuration");
            return 0;
        }
        if (now_mono_ms() > deadline)
            FAIL("broker not ready on port %d after %d ms", b->port, start_ms);
        pause_ms(20);
    }
}

static void make_passwd(struct broker *b, const char *const *users)
{
    const char *path = broker_dir_file(b, "passwd");
    const char *tool = env_or("MOSQUITTO_PASSWD", "/usr/bin/mosquitto_passwd");
    bool first = true;
    for (const char *const *u = users; *u; u++) {
        char user[128];
        const char *colon = strchr(*u, ':');
        if (!colon || (size_t)(colon - *u) >= sizeof(user))
            FAIL("password entry must be user:pass: %s", *u);
        memcpy(user, *u, (size_t)(colon - *u));
        user[colon - *u] = '\0';
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0)
                dup2(devnull, STDOUT_FILENO);
            if (first)
                execl(tool, tool, "-b", "-c", path, user, colon + 1, (char *)NULL);
            else
                execl(tool, tool, "-b", path, user, colon + 1, (char *)NULL);
            _exit(127);
        }
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            FAIL("mosquitto_passwd failed for %s", user);
        first = false;
    }
}

static void write_files(struct broker *b, const char *const *files)
{
    for (const char *const *f = files; f[0]; f += 2) {
        if (!f[1])
            FAIL("broker_opts.files: %s has no content", f[0]);
        const char *path = broker_dir_file(b, f[0]);
        FILE *out = fopen(path, "w");
        if (!out)
            FAIL("cannot write %s: %s", path, strerror(errno));
        fputs(f[1], out);
        if (fclose(out) != 0)
            FAIL("cannot write %s", path);
    }
}

enum leak_check {
    LEAKS_NONE,   /* killed: no leak report can exist */
    LEAKS_ANY,    /* a clean exit: any leak fails */
    LEAKS_PLUGIN, /* a failed start-up: mosquitto 2.0.11 leaks its config on that
                   * path, so only leaks through the plugin's frames count */
};

static void scan_log(struct broker *b, enum leak_check leaks)
{
    /* The last: what the plugin logs when its record pool still holds
     * records at unload, which no sanitizer sees (the pool is mmap'd). */
    static const char *const errors[] = {"ERROR: AddressSanitizer",
                                         "runtime error:", "records were never freed"};
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (broker_log_contains(b, 0, errors[i]))
            FAIL("broker log reports \"%s\"", errors[i]);
    }
    /* Whatever `leaks` says: valgrind only counts the plugin's records, and
     * a killed broker's log has errors at most. */
    scan_valgrind(b);
    if (leaks == LEAKS_NONE)
        return;
    char *text = read_file(b->log_path, 0, NULL);
    const char *report = text ? strstr(text, "LeakSanitizer") : NULL;
    bool bad = report && (leaks == LEAKS_ANY || strstr(report, "mosquitto_rtm") ||
                          strstr(report, "<unknown module>"));
    free(text);
    if (bad)
        FAIL("broker log reports a LeakSanitizer leak%s",
             leaks == LEAKS_PLUGIN ? " through the plugin" : "");
}

static struct broker *start(const struct broker_opts *opts, bool expect_exit)
{
    (void)plugin_path(); /* fail early, before making a temp dir */
    struct broker *b = calloc(1, sizeof(*b));
    if (!b)
        FAIL("out of memory");
    const char *tmp = env_or("TMPDIR", "/tmp");
    snprintf(b->dir, sizeof(b->dir), "%s/rtm-it-XXXXXX", tmp);
    if (!mkdtemp(b->dir))
        FAIL("mkdtemp in %s: %s", tmp, strerror(errno));
    snprintf(b->conf_path, sizeof(b->conf_path), "%s/mosquitto.conf", b->dir);
    snprintf(b->log_path, sizeof(b->log_path), "%s/broker.log", b->dir);
    register_broker(b);
    if (opts && opts->passwd_users)
        make_passwd(b, opts->passwd_users);
    if (opts && opts->files)
        write_files(b, opts->files);
    if (opts && opts->prepare)
        opts->prepare(b, opts->prepare_ud);
    snprintf(b->host, sizeof(b->host), "%s", opts && opts->host ? opts->host : "127.0.0.1");
    for (int attempt = 0; attempt < 5; attempt++) {
        b->port = free_port();
        do
            b->port2 = free_port();
        while (b->port2 == b->port);
        write_conf(b, opts);
        long mark = broker_log_mark(b);
        spawn(b);
        int r = wait_ready(b, mark, expect_exit);
        if (r == 0 || r == 2)
            return b;
        fprintf(stderr, "port %d was taken, retrying with another\n", b->port);
    }
    FAIL("could not start a broker on a free port");
}

struct broker *broker_start(const struct broker_opts *opts)
{
    return start(opts, false);
}

struct broker *broker_start_refused(const struct broker_opts *opts)
{
    struct broker *b = start(opts, true);
    scan_log(b, LEAKS_PLUGIN);
    return b;
}

void broker_stop(struct broker *b)
{
    if (b->pid <= 0)
        return;
    kill(b->pid, SIGTERM);
    int stop_ms = STOP_TIMEOUT_MS * rt_time_scale();
    int64_t deadline = now_mono_ms() + stop_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(b->pid, &status, WNOHANG);
        if (r == b->pid)
            break;
        if (now_mono_ms() > deadline) {
            kill(b->pid, SIGKILL);
            waitpid(b->pid, NULL, 0);
            b->pid = 0;
            FAIL("broker did not exit within %d ms of SIGTERM", stop_ms);
        }
        pause_ms(20);
    }
    b->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            FAIL("broker died of signal %d on SIGTERM", WTERMSIG(status));
        FAIL("broker exited with status %d on SIGTERM", WEXITSTATUS(status));
    }
    scan_log(b, LEAKS_ANY);
}

void broker_kill9(struct broker *b)
{
    if (b->pid <= 0)
        return;
    kill(b->pid, SIGKILL);
    waitpid(b->pid, NULL, 0);
    b->pid = 0;
    scan_log(b, LEAKS_NONE);
}

void broker_freeze(const struct broker *b)
{
    if (kill(b->pid, SIGSTOP) != 0)
        FAIL("broker_freeze: kill: %s", strerror(errno));
    /* The broker is this process's child: WUNTRACED reports the moment it
     * has stopped. SIGSTOP cannot be caught or ignored. */
    int status = 0;
    if (waitpid(b->pid, &status, WUNTRACED) != b->pid || !WIFSTOPPED(status))
        FAIL("broker_freeze: the broker did not stop (status %#x)", status);
}

void broker_thaw(const struct broker *b)
{
    if (kill(b->pid, SIGCONT) != 0)
        FAIL("broker_thaw: kill: %s", strerror(errno));
}

void broker_restart(struct broker *b)
{
    if (b->pid > 0)
        FAIL("broker_restart: the broker is still running");
    long mark = broker_log_mark(b);
    spawn(b);
    if (wait_ready(b, mark, false) != 0)
        FAIL("broker_restart: port %d was taken by someone else", b->port);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void broker_free(struct broker *b)
{
    if (!b)
        return;
    broker_stop(b);
    unregister_broker(b);
    if (!getenv("RTM_KEEP_DIRS"))
        remove_dir(b->dir);
    free(b);
}

long broker_log_mark(const struct broker *b)
{
    struct stat st;
    if (stat(b->log_path, &st) != 0)
        return 0;
    return (long)st.st_size;
}

bool broker_log_contains(const struct broker *b, long from, const char *needle)
{
    char *text = read_file(b->log_path, from, NULL);
    if (!text)
        return false;
    bool found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

bool broker_wait_log(const struct broker *b, long from, const char *needle, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    for (;;) {
        if (broker_log_contains(b, from, needle))
            return true;
        if (now_mono_ms() > deadline)
            return false;
        pause_ms(20);
    }
}

#define MAX_NEEDLES 8

static int count_lines(const struct broker *b, long from, const char *const *needles, int n)
{
    char *text = read_file(b->log_path, from, NULL);
    if (!text)
        return 0;
    int count = 0;
    for (char *line = text, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        if (end)
            *end = '\0';
        bool all = true;
        for (int i = 0; i < n && all; i++)
            all = strstr(line, needles[i]) != NULL;
        count += all;
    }
    free(text);
    return count;
}

static int needles_from(va_list ap, const char **needles)
{
    int n = 0;
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        if (n == MAX_NEEDLES)
            FAIL("more than %d needles", MAX_NEEDLES);
        needles[n++] = s;
    }
    return n;
}

int broker_log_lines(const struct broker *b, long from, ...)
{
    const char *needles[MAX_NEEDLES];
    va_list ap;
    va_start(ap, from);
    int n = needles_from(ap, needles);
    va_end(ap);
    return count_lines(b, from, needles, n);
}

bool broker_wait_log_line(const struct broker *b, long from, int timeout_ms, ...)
{
    const char *needles[MAX_NEEDLES];
    va_list ap;
    va_start(ap, timeout_ms);
    int n = needles_from(ap, needles);
    va_end(ap);
    int64_t deadline = now_mono_ms() + timeout_ms;
    for (;;) {
        if (count_lines(b, from, needles, n) > 0)
            return true;
        if (now_mono_ms() > deadline)
            return false;
        pause_ms(20);
    }
}

int rt_free_port(void)
{
    return free_port();
}

const char *broker_dir_file(const struct broker *b, const char *name)
{
    return rt_fmt("%s/%s", b->dir, name);
}
