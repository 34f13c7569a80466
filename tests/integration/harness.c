/*
 * Integration test harness: see harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
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
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

extern char **environ;

#define MAX_BROKERS      8
#define LOG_TAIL_LINES   250
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  10000
#define CASE_TIMEOUT_MS  60000

/* ------------------------------------------------------------------------ */
/* time                                                                      */

int64_t now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void rt_wait_ms(int ms)
{
    pause_ms(ms);
}

static struct timespec mono_deadline(int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    return ts;
}

/* ------------------------------------------------------------------------ */
/* failing                                                                   */

static struct broker *g_brokers[MAX_BROKERS];

#define MAX_AT_END 16

static struct {
    void (*fn)(void *ud, bool failed);
    void *ud;
} g_at_end[MAX_AT_END];
static int g_nat_end;

static void run_at_end(bool failed)
{
    while (g_nat_end > 0) {
        g_nat_end--;
        g_at_end[g_nat_end].fn(g_at_end[g_nat_end].ud, failed);
    }
}

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

_Noreturn void rt_fail(const char *file, int line, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "\nFAIL at %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
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
    }
    run_at_end(true);
    fflush(stderr);
    _exit(1);
}

static void fail_json(const char *file, int line, const cJSON *obj, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail_json(const char *file, int line, const cJSON *obj, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    char shown[4096];
    snprintf(shown, sizeof(shown), "%s", text ? text : "(null object)");
    free(text);
    rt_fail(file, line, "%s\n  in message: %s", what, shown);
}

static const cJSON *field(const char *file, int line, const cJSON *obj, const char *key)
{
    if (!obj)
        rt_fail(file, line, "expected a JSON message with field \"%s\", got none", key);
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

void rt_expect_str(const char *file, int line, const cJSON *obj, const char *key,
                   const char *expected)
{
    const cJSON *it = field(file, line, obj, key);
    if (!cJSON_IsString(it) || strcmp(it->valuestring, expected) != 0)
        fail_json(file, line, obj, "field \"%s\": expected string \"%.200s\"", key, expected);
}

void rt_expect_bool(const char *file, int line, const cJSON *obj, const char *key, bool expected)
{
    const cJSON *it = field(file, line, obj, key);
    if (!cJSON_IsBool(it) || (bool)cJSON_IsTrue(it) != expected)
        fail_json(file, line, obj, "field \"%s\": expected %s", key, expected ? "true" : "false");
}

long long rt_get_int(const char *file, int line, const cJSON *obj, const char *key)
{
    const cJSON *it = field(file, line, obj, key);
    if (!cJSON_IsNumber(it))
        fail_json(file, line, obj, "field \"%s\": expected a number", key);
    double v = it->valuedouble;
    long long i = (long long)v;
    if ((double)i != v)
        fail_json(file, line, obj, "field \"%s\": expected an integer", key);
    return i;
}

void rt_expect_int(const char *file, int line, const cJSON *obj, const char *key,
                   long long expected)
{
    if (rt_get_int(file, line, obj, key) != expected)
        fail_json(file, line, obj, "field \"%s\": expected %lld", key, expected);
}

void rt_expect_absent(const char *file, int line, const cJSON *obj, const char *key)
{
    if (field(file, line, obj, key))
        fail_json(file, line, obj, "field \"%s\": expected it to be absent", key);
}

void rt_expect_keys(const char *file, int line, const cJSON *obj, ...)
{
    if (!obj)
        rt_fail(file, line, "expected a JSON message, got none");
    const char *keys[64];
    int n = 0;
    va_list ap;
    va_start(ap, obj);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL && n < 64;)
        keys[n++] = k;
    va_end(ap);
    for (int i = 0; i < n; i++) {
        if (!cJSON_GetObjectItemCaseSensitive(obj, keys[i]))
            fail_json(file, line, obj, "expected field \"%s\"", keys[i]);
    }
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool listed = false;
        for (int i = 0; i < n && !listed; i++)
            listed = it->string && strcmp(it->string, keys[i]) == 0;
        if (!listed)
            fail_json(file, line, obj, "unexpected field \"%s\"", it->string ? it->string : "?");
    }
}

void rt_at_end(void (*fn)(void *ud, bool failed), void *ud)
{
    if (g_nat_end == MAX_AT_END)
        FAIL("rt_at_end: more than %d entries", MAX_AT_END);
    g_at_end[g_nat_end].fn = fn;
    g_at_end[g_nat_end].ud = ud;
    g_nat_end++;
}

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

/* Every rt_fmt string lives until the test case ends. */
static char **g_strings;
static size_t g_nstrings, g_capstrings;

const char *rt_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        FAIL("rt_fmt: bad format %s", fmt);
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        FAIL("out of memory");
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (g_nstrings == g_capstrings) {
        size_t cap = g_capstrings ? g_capstrings * 2 : 256;
        char **grown = realloc(g_strings, cap * sizeof(*grown));
        if (!grown)
            FAIL("out of memory");
        g_strings = grown;
        g_capstrings = cap;
    }
    g_strings[g_nstrings++] = buf;
    return buf;
}

static void free_strings(void)
{
    for (size_t i = 0; i < g_nstrings; i++)
        free(g_strings[i]);
    free(g_strings);
    g_strings = NULL;
    g_nstrings = g_capstrings = 0;
}

const char *rt_uniq(const char *prefix)
{
    static int counter;
    return rt_fmt("%s-%d-%d", prefix, (int)getpid(), ++counter);
}

const char *inbox(const char *uid)
{
    return rt_fmt("rtm/u/%s/call", uid);
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

/* Replaces every @DIR@ in `line` with `dir`. */
static void expand_dir(char *out, size_t size, const char *line, const char *dir)
{
    size_t o = 0;
    for (const char *p = line; *p;) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            int n = snprintf(out + o, size - o, "%s", dir);
            if (n < 0 || (size_t)n >= size - o)
                FAIL("config line too long: %s", line);
            o += (size_t)n;
            p += 5;
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
    fprintf(f, "listener %d 127.0.0.1\n", b->port);
    fprintf(f, "allow_anonymous true\n");
    fprintf(f, "plugin %s\n", plugin_path());
    if (!(opts && opts->other_topics_default))
        fprintf(f, "plugin_opt_other_topics allow\n");
    bool own_listener = true;
    if (opts && opts->plugin_opts) {
        for (const char *const *o = opts->plugin_opts; *o; o++) {
            fprintf(f, "plugin_opt_%s\n", *o);
            if (strncmp(*o, "registry_listener", 17) == 0 && (*o)[17] == ' ')
                own_listener = false;
        }
    }
    if (own_listener) {
        if (opts && opts->registry_listener)
            fprintf(f, "plugin_opt_registry_listener %s\n", opts->registry_listener);
        else
            fprintf(f, "plugin_opt_registry_listener 127.0.0.1:%d\n", b->port);
    }
    if (opts && opts->passwd_users)
        fprintf(f, "password_file %s/passwd\n", b->dir);
    if (opts && opts->extra_lines) {
        for (const char *const *l = opts->extra_lines; *l; l++) {
            char line[1024];
            expand_dir(line, sizeof(line), *l, b->dir);
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

static void spawn(struct broker *b)
{
    const char *bin = env_or("MOSQUITTO_BIN", "/usr/sbin/mosquitto");
    char **env = child_env();
    int fd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        FAIL("cannot open %s: %s", b->log_path, strerror(errno));
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only async-signal-safe calls from here on: the parent has threads. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        char *argv[] = {(char *)bin, "-c", b->conf_path, NULL};
        execve(bin, argv, env);
        _exit(127);
    }
    close(fd);
    free(env);
    b->pid = pid;
}

static bool tcp_probe(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* 0: ready; 1: the port was taken; 2: exited (only when `expect_exit`);
 * fails the test otherwise. */
static int wait_ready(struct broker *b, long mark, bool expect_exit)
{
    char loaded[600];
    snprintf(loaded, sizeof(loaded), "Loading plugin: %s", plugin_path());
    int64_t deadline = now_mono_ms() + START_TIMEOUT_MS;
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
        if (tcp_probe(b->port) && broker_log_contains(b, mark, loaded) &&
            broker_log_contains(b, mark, " running")) {
            if (expect_exit)
                FAIL("broker started, but was expected to refuse its configuration");
            return 0;
        }
        if (now_mono_ms() > deadline)
            FAIL("broker not ready on port %d after %d ms", b->port, START_TIMEOUT_MS);
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

enum leak_check {
    LEAKS_NONE,   /* killed: no leak report can exist */
    LEAKS_ANY,    /* a clean exit: any leak fails */
    LEAKS_PLUGIN, /* a failed start-up: mosquitto 2.0.11 leaks its config on that
                   * path, so only leaks through the plugin's frames count */
};

static void scan_log(struct broker *b, enum leak_check leaks)
{
    static const char *const errors[] = {"ERROR: AddressSanitizer", "runtime error:"};
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (broker_log_contains(b, 0, errors[i]))
            FAIL("broker log reports \"%s\"", errors[i]);
    }
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
    for (int attempt = 0; attempt < 5; attempt++) {
        b->port = free_port();
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
    int64_t deadline = now_mono_ms() + STOP_TIMEOUT_MS;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(b->pid, &status, WNOHANG);
        if (r == b->pid)
            break;
        if (now_mono_ms() > deadline) {
            kill(b->pid, SIGKILL);
            waitpid(b->pid, NULL, 0);
            b->pid = 0;
            FAIL("broker did not exit within %d ms of SIGTERM", STOP_TIMEOUT_MS);
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

const char *broker_dir_file(const struct broker *b, const char *name)
{
    return rt_fmt("%s/%s", b->dir, name);
}

/* ------------------------------------------------------------------------ */
/* libmosquitto client                                                       */

#define MAX_ACKS 512

enum ack_kind { ACK_PUB, ACK_SUB };

struct ack {
    int mid;
    int kind;
    int rc;
};

struct client {
    struct mosquitto *mosq;
    int port;
    int protocol;
    bool persistent;
    int keepalive;
    char id[128];
    char user[128];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool loop_running;
    bool connack;
    int connack_rc;
    int64_t connack_at;
    bool connected;
    bool closed;
    struct ack acks[MAX_ACKS];
    size_t nacks;
    struct msg *head;
    struct msg *tail;
};

static void c_lock(struct client *c)
{
    pthread_mutex_lock(&c->mu);
}

static void c_unlock(struct client *c)
{
    pthread_mutex_unlock(&c->mu);
}

/* Waits on the client's condvar until `deadline`; false on timeout. */
static bool c_wait(struct client *c, int64_t deadline)
{
    if (now_mono_ms() >= deadline)
        return false;
    struct timespec ts = mono_deadline(deadline);
    int rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    return rc == 0 || rc == EINTR || now_mono_ms() < deadline;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)flags;
    (void)props;
    struct client *c = obj;
    c_lock(c);
    c->connack = true;
    c->connack_rc = rc;
    c->connack_at = now_mono_ms();
    c->connected = rc == 0;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
    if (rc != 0)
        mosquitto_disconnect(mosq); /* no retry after a refusal */
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    (void)mosq;
    (void)rc;
    (void)props;
    struct client *c = obj;
    c_lock(c);
    c->connected = false;
    c->closed = true;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
}

static void add_ack(struct client *c, int kind, int mid, int rc)
{
    c_lock(c);
    struct ack *a = &c->acks[c->nacks % MAX_ACKS];
    c->nacks++;
    a->kind = kind;
    a->mid = mid;
    a->rc = rc;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int rc,
                       const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    add_ack(obj, ACK_PUB, mid, rc);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    add_ack(obj, ACK_SUB, mid, count > 0 ? granted[0] : -1);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                       const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    struct client *c = obj;
    struct msg *g = calloc(1, sizeof(*g));
    if (!g)
        return;
    g->topic = strdup(m->topic);
    g->payload = malloc((size_t)m->payloadlen + 1);
    if (!g->topic || !g->payload) {
        free(g->topic);
        free(g->payload);
        free(g);
        return;
    }
    if (m->payloadlen > 0)
        memcpy(g->payload, m->payload, (size_t)m->payloadlen);
    g->payload[m->payloadlen] = '\0';
    g->len = m->payloadlen;
    g->qos = m->qos;
    g->retain = m->retain;
    g->at_ms = now_mono_ms();
    g->json = cJSON_ParseWithLength(g->payload, (size_t)g->len);
    if (getenv("RTM_TRACE"))
        fprintf(stderr, "[%s] <- %s %s%s\n", c->id, g->topic, g->payload,
                g->retain ? " (retained)" : "");
    c_lock(c);
    if (c->tail)
        c->tail->next = g;
    else
        c->head = g;
    c->tail = g;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
}

struct client *client_new(const struct broker *b, const struct client_opts *o)
{
    struct client *c = calloc(1, sizeof(*c));
    if (!c)
        FAIL("out of memory");
    if (!o->client_id)
        FAIL("client_new: a client id is required");
    snprintf(c->id, sizeof(c->id), "%s", o->client_id);
    if (o->username)
        snprintf(c->user, sizeof(c->user), "%s", o->username);
    c->port = b->port;
    c->protocol = o->protocol == 5 ? 5 : 4;
    c->persistent = o->persistent;
    c->keepalive = o->keepalive > 0 ? o->keepalive : 60;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->mosq = mosquitto_new(c->id, !o->persistent, c);
    if (!c->mosq)
        FAIL("mosquitto_new(%s) failed", c->id);
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         c->protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    if (o->username || o->password)
        mosquitto_username_pw_set(c->mosq, o->username, o->password);
    /* A test sees every drop: the library must not quietly reconnect. */
    mosquitto_reconnect_delay_set(c->mosq, 3600, 3600, false);
    mosquitto_connect_v5_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(c->mosq, on_publish);
    mosquitto_subscribe_v5_callback_set(c->mosq, on_subscribe);
    mosquitto_message_v5_callback_set(c->mosq, on_message);
    return c;
}

int client_connect(struct client *c)
{
    mosquitto_property *props = NULL;
    if (c->protocol == 5 && c->persistent) {
        /* MQTT 5 persistent session: clean start off, session kept an hour. */
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600);
    }
    int rc;
    if (c->protocol == 5)
        rc = mosquitto_connect_bind_v5(c->mosq, "127.0.0.1", c->port, c->keepalive, NULL, props);
    else
        rc = mosquitto_connect(c->mosq, "127.0.0.1", c->port, c->keepalive);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS)
        FAIL("client %s: mosquitto_connect: %s", c->id, mosquitto_strerror(rc));
    if (mosquitto_loop_start(c->mosq) != MOSQ_ERR_SUCCESS)
        FAIL("client %s: mosquitto_loop_start failed", c->id);
    c->loop_running = true;
    int64_t deadline = now_mono_ms() + 5000;
    c_lock(c);
    while (!c->connack && c_wait(c, deadline))
        ;
    int result = c->connack ? c->connack_rc : -1;
    c_unlock(c);
    return result;
}

int64_t client_connack_at(const struct client *c)
{
    return c->connack_at;
}

static int wait_ack(struct client *c, int kind, int mid, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    c_lock(c);
    for (;;) {
        size_t first = c->nacks > MAX_ACKS ? c->nacks - MAX_ACKS : 0;
        for (size_t i = first; i < c->nacks; i++) {
            struct ack *a = &c->acks[i % MAX_ACKS];
            if (a->kind == kind && a->mid == mid) {
                int rc = a->rc;
                a->mid = -1;
                c_unlock(c);
                return rc;
            }
        }
        if (!c_wait(c, deadline))
            break;
    }
    c_unlock(c);
    return -1;
}

int client_subscribe(struct client *c, const char *filter, int qos)
{
    int mid = 0;
    int rc = mosquitto_subscribe(c->mosq, &mid, filter, qos);
    if (rc != MOSQ_ERR_SUCCESS)
        FAIL("client %s: subscribe %s: %s", c->id, filter, mosquitto_strerror(rc));
    return wait_ack(c, ACK_SUB, mid, WAIT_MS);
}

int client_publish(struct client *c, const char *topic, const void *payload, int len, int qos,
                   bool retain)
{
    int mid = 0;
    int rc = mosquitto_publish(c->mosq, &mid, topic, len, payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "client %s: publish %s: %s\n", c->id, topic, mosquitto_strerror(rc));
        return -1;
    }
    if (qos == 0)
        return 0;
    return wait_ack(c, ACK_PUB, mid, WAIT_MS);
}

int client_publish_str(struct client *c, const char *topic, const char *payload, int qos)
{
    return client_publish(c, topic, payload, (int)strlen(payload), qos, false);
}

void rt_send(struct client *c, const char *topic, const char *json)
{
    int rc = client_publish_str(c, topic, json, 1);
    if (rc < 0)
        FAIL("client %s: publishing to %s got no PUBACK", c->id, topic);
}

void client_disconnect(struct client *c)
{
    if (!c->loop_running)
        return;
    c_lock(c);
    bool connected = c->connected;
    c_unlock(c);
    mosquitto_disconnect(c->mosq);
    mosquitto_loop_stop(c->mosq, !connected);
    c->loop_running = false;
    c_lock(c);
    c->connected = false;
    c->closed = true;
    c_unlock(c);
}

bool client_wait_disconnected(struct client *c, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    c_lock(c);
    while (!c->closed && c_wait(c, deadline))
        ;
    bool closed = c->closed;
    c_unlock(c);
    return closed;
}

void client_free(struct client *c)
{
    if (!c)
        return;
    client_disconnect(c);
    mosquitto_destroy(c->mosq);
    for (struct msg *m = c->head, *next; m; m = next) {
        next = m->next;
        cJSON_Delete(m->json);
        free(m->topic);
        free(m->payload);
        free(m);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *client_id(const struct client *c)
{
    return c->id;
}

#define MAX_PAIRS 16

struct matcher {
    int n;
    const char *key[MAX_PAIRS];
    const char *val[MAX_PAIRS];
};

static void matcher_from(struct matcher *mt, va_list ap)
{
    mt->n = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (!v)
            FAIL("match list: key \"%s\" has no value", k);
        if (mt->n == MAX_PAIRS)
            FAIL("match list too long");
        mt->key[mt->n] = k;
        mt->val[mt->n] = v;
        mt->n++;
    }
}

static bool field_is(const cJSON *obj, const char *key, const char *val)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return false;
    if (cJSON_IsString(it))
        return strcmp(it->valuestring, val) == 0;
    if (cJSON_IsBool(it))
        return strcmp(cJSON_IsTrue(it) ? "true" : "false", val) == 0;
    if (cJSON_IsNumber(it)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%lld", (long long)it->valuedouble);
        return strcmp(buf, val) == 0;
    }
    if (cJSON_IsNull(it))
        return strcmp(val, "null") == 0;
    return false;
}

static bool msg_matches(const struct msg *m, const char *topic, const struct matcher *mt)
{
    if (topic && strcmp(m->topic, topic) != 0)
        return false;
    if (mt->n == 0)
        return true;
    if (!cJSON_IsObject(m->json))
        return false;
    for (int i = 0; i < mt->n; i++) {
        if (!field_is(m->json, mt->key[i], mt->val[i]))
            return false;
    }
    return true;
}

static struct msg *wait_match(struct client *c, const char *topic, int timeout_ms,
                              const struct matcher *mt, bool need_json)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    c_lock(c);
    for (;;) {
        for (struct msg *m = c->head; m; m = m->next) {
            if (!m->consumed && (!need_json || m->json) && msg_matches(m, topic, mt)) {
                m->consumed = true;
                c_unlock(c);
                return m;
            }
        }
        if (!c_wait(c, deadline))
            break;
    }
    c_unlock(c);
    return NULL;
}

cJSON *client_wait_json(struct client *c, const char *topic, int timeout_ms, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, timeout_ms);
    matcher_from(&mt, ap);
    va_end(ap);
    struct msg *m = wait_match(c, topic, timeout_ms, &mt, true);
    return m ? m->json : NULL;
}

struct msg *client_wait_fields(struct client *c, const char *topic, int timeout_ms, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, timeout_ms);
    matcher_from(&mt, ap);
    va_end(ap);
    return wait_match(c, topic, timeout_ms, &mt, true);
}

struct msg *client_wait_msg(struct client *c, const char *topic, int timeout_ms)
{
    struct matcher mt = {0};
    return wait_match(c, topic, timeout_ms, &mt, false);
}

int client_count(struct client *c, const char *topic, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, topic);
    matcher_from(&mt, ap);
    va_end(ap);
    int n = 0;
    c_lock(c);
    for (struct msg *m = c->head; m; m = m->next)
        n += msg_matches(m, topic, &mt);
    c_unlock(c);
    return n;
}

int client_consume_all(struct client *c, const char *topic, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, topic);
    matcher_from(&mt, ap);
    va_end(ap);
    int n = 0;
    c_lock(c);
    for (struct msg *m = c->head; m; m = m->next) {
        if (!m->consumed && msg_matches(m, topic, &mt)) {
            m->consumed = true;
            n++;
        }
    }
    c_unlock(c);
    return n;
}

int client_count_unconsumed(struct client *c, const char *topic)
{
    int n = 0;
    c_lock(c);
    for (struct msg *m = c->head; m; m = m->next)
        n += !m->consumed && (!topic || strcmp(m->topic, topic) == 0);
    c_unlock(c);
    return n;
}

void client_foreach(struct client *c, const char *topic, void (*fn)(const struct msg *m, void *ud),
                    void *ud)
{
    /* Messages are only ever appended; walk a snapshot of the list. */
    c_lock(c);
    struct msg *head = c->head;
    struct msg *tail = c->tail;
    c_unlock(c);
    for (struct msg *m = head; m; m = m->next) {
        if (!topic || strcmp(m->topic, topic) == 0)
            fn(m, ud);
        if (m == tail)
            break;
    }
}

void client_dump(struct client *c)
{
    c_lock(c);
    fprintf(stderr, "messages received by %s:\n", c->id);
    for (struct msg *m = c->head; m; m = m->next)
        fprintf(stderr, "  %s%s %.*s%s\n", m->consumed ? "  " : "* ", m->topic,
                m->len > 600 ? 600 : m->len, m->payload, m->retain ? " (retained)" : "");
    c_unlock(c);
}

struct client *client_open_v(const struct broker *b, const struct client_opts *o)
{
    struct client *c = client_new(b, o);
    int rc = client_connect(c);
    if (rc != 0)
        FAIL("client %s: CONNACK %d, expected 0 (accepted)", o->client_id, rc);
    return c;
}

struct client *client_open(const struct broker *b, const char *id, const char *username)
{
    struct client_opts o = {.client_id = id, .username = username};
    return client_open_v(b, &o);
}

struct client *client_open_inbox(const struct broker *b, const char *id, const char *username)
{
    struct client *c = client_open(b, id, username);
    const char *uid = username ? username : id;
    int granted = client_subscribe(c, inbox(uid), 1);
    if (granted != 1)
        FAIL("client %s: subscribing to %s granted %d, expected QoS 1", id, inbox(uid), granted);
    return c;
}

/* ------------------------------------------------------------------------ */
/* call protocol helpers                                                     */

cJSON *rt_expect_event_at(const char *file, int line, struct client *c, const char *uid,
                          const char *type, const char *id)
{
    cJSON *ev = client_wait_json(c, inbox(uid), WAIT_MS, "type", type, "id", id, (char *)NULL);
    if (!ev) {
        client_dump(c);
        rt_fail(file, line, "%s: no \"%s\" for id %s on %s within %d ms", c->id, type, id,
                inbox(uid), WAIT_MS);
    }
    return ev;
}

void rt_check_stamp(const char *file, int line, const cJSON *ev, const char *type, const char *id,
                    const char *caller, const char *callee, const char *by)
{
    rt_expect_str(file, line, ev, "type", type);
    rt_expect_str(file, line, ev, "id", id);
    rt_expect_str(file, line, ev, "caller", caller);
    rt_expect_str(file, line, ev, "callee", callee);
    rt_expect_str(file, line, ev, "by", by);
    long long ts = rt_get_int(file, line, ev, "ts");
    long long now = now_wall_ms();
    if (ts < now - 10000 || ts > now + 10000)
        fail_json(file, line, ev, "ts %lld is not near the current time %lld (ms since epoch)", ts,
                  now);
}

cJSON *rt_expect_error_at(const char *file, int line, struct client *c, const char *uid,
                          const char *code, const char *id, const char *request)
{
    cJSON *ev = client_wait_json(c, inbox(uid), WAIT_MS, "type", "error", (char *)NULL);
    if (!ev) {
        client_dump(c);
        rt_fail(file, line, "%s: no error (expected code %s) on %s within %d ms", c->id, code,
                inbox(uid), WAIT_MS);
    }
    rt_expect_str(file, line, ev, "code", code);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "message");
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0')
        fail_json(file, line, ev, "field \"message\": expected a non-empty string");
    if (!id)
        rt_expect_absent(file, line, ev, "id");
    else if (strcmp(id, "*") != 0)
        rt_expect_str(file, line, ev, "id", id);
    if (!request)
        rt_expect_absent(file, line, ev, "request");
    else if (strcmp(request, "*") != 0)
        rt_expect_str(file, line, ev, "request", request);
    long long ts = rt_get_int(file, line, ev, "ts");
    long long now = now_wall_ms();
    if (ts < now - 10000 || ts > now + 10000)
        fail_json(file, line, ev, "ts %lld is not near the current time %lld", ts, now);
    static const char *const keys[] = {"type", "code", "message", "id", "request", "ts"};
    for (const cJSON *it = ev->child; it; it = it->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !known; i++)
            known = it->string && strcmp(it->string, keys[i]) == 0;
        if (!known)
            fail_json(file, line, ev, "unexpected field \"%s\" in an error",
                      it->string ? it->string : "?");
    }
    return ev;
}

void rt_expect_nothing_else_at(const char *file, int line, struct client *c, const char *topic)
{
    int n = client_count_unconsumed(c, topic);
    if (n != 0) {
        client_dump(c);
        rt_fail(file, line, "%s: %d unexpected message(s)%s%s (marked * above)", c->id, n,
                topic ? " on " : "", topic ? topic : "");
    }
}

/* ------------------------------------------------------------------------ */
/* raw MQTT 3.1.1 client                                                     */

struct raw {
    int fd;
};

static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (unsigned char)(n >> 8);
    p[1] = (unsigned char)(n & 0xff);
    memcpy(p + 2, s, n);
    return n + 2;
}

static size_t put_remaining(unsigned char *p, size_t len)
{
    size_t i = 0;
    do {
        unsigned char byte = len % 128;
        len /= 128;
        if (len > 0)
            byte |= 0x80;
        p[i++] = byte;
    } while (len > 0);
    return i;
}

static void send_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            FAIL("raw client: send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* Reads exactly `len` bytes by `deadline`; false on close or timeout. */
static bool recv_all(int fd, unsigned char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        int64_t left = deadline - now_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

struct raw *raw_connect(int port, const char *client_id, const char *username, const char *password,
                        int keepalive, bool clean, int *connack_rc)
{
    struct raw *r = calloc(1, sizeof(*r));
    if (!r)
        FAIL("out of memory");
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->fd < 0)
        FAIL("raw client: socket: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        FAIL("raw client: connect to 127.0.0.1:%d: %s", port, strerror(errno));

    unsigned char body[1024];
    size_t n = 0;
    n += put_str(body + n, "MQTT");
    body[n++] = 4; /* MQTT 3.1.1 */
    unsigned char flags = clean ? 0x02 : 0x00;
    if (username)
        flags |= 0x80;
    if (password)
        flags |= 0x40;
    body[n++] = flags;
    body[n++] = (unsigned char)(keepalive >> 8);
    body[n++] = (unsigned char)(keepalive & 0xff);
    if (strlen(client_id) + (username ? strlen(username) : 0) + (password ? strlen(password) : 0) >
        900)
        FAIL("raw client: CONNECT too long");
    n += put_str(body + n, client_id);
    if (username)
        n += put_str(body + n, username);
    if (password)
        n += put_str(body + n, password);
    unsigned char pkt[1100];
    size_t h = 0;
    pkt[h++] = 0x10;
    h += put_remaining(pkt + h, n);
    memcpy(pkt + h, body, n);
    send_all(r->fd, pkt, h + n);

    unsigned char ack[4];
    if (!recv_all(r->fd, ack, sizeof(ack), now_mono_ms() + 5000) || ack[0] != 0x20 || ack[1] != 2)
        *connack_rc = -1;
    else
        *connack_rc = ack[3];
    return r;
}

void raw_publish0(struct raw *r, const char *topic, const char *payload)
{
    size_t tl = strlen(topic), pl = strlen(payload);
    size_t rem = 2 + tl + pl;
    unsigned char *pkt = malloc(rem + 8);
    if (!pkt)
        FAIL("out of memory");
    size_t h = 0;
    pkt[h++] = 0x30;
    h += put_remaining(pkt + h, rem);
    h += put_str(pkt + h, topic);
    memcpy(pkt + h, payload, pl);
    send_all(r->fd, pkt, h + pl);
    free(pkt);
}

bool raw_wait_closed(struct raw *r, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        unsigned char buf[512];
        ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return true;
    }
}

void raw_drop(struct raw *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* runner                                                                    */

static void run_case(const struct test_case *tc)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    mosquitto_lib_init();
    tc->fn();
    for (int i = 0; i < MAX_BROKERS; i++) {
        if (g_brokers[i])
            broker_free(g_brokers[i]);
    }
    run_at_end(false);
    mosquitto_lib_cleanup();
    free_strings();
    fflush(stdout);
    fflush(stderr);
    exit(0);
}

int run_tests(const struct test_case *cases, size_t count, int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < count; i++) {
        const struct test_case *tc = &cases[i];
        if (argc > 1) {
            bool selected = false;
            for (int a = 1; a < argc && !selected; a++)
                selected = strcmp(argv[a], tc->name) == 0;
            if (!selected)
                continue;
        }
        ran++;
        printf("RUN  %s\n", tc->name);
        fflush(stdout);
        fflush(stderr);
        int64_t start = now_mono_ms();
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            run_case(tc);
        int status = 0;
        bool timed_out = false;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            if (now_mono_ms() - start > CASE_TIMEOUT_MS) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                timed_out = true;
                break;
            }
            pause_ms(20);
        }
        double secs = (double)(now_mono_ms() - start) / 1000.0;
        if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("PASS %s (%.1f s)\n", tc->name, secs);
        } else {
            failed++;
            if (timed_out)
                printf("FAIL %s: no result within %d s\n", tc->name, CASE_TIMEOUT_MS / 1000);
            else if (WIFSIGNALED(status))
                printf("FAIL %s: killed by signal %d (%.1f s)\n", tc->name, WTERMSIG(status), secs);
            else
                printf("FAIL %s (%.1f s)\n", tc->name, secs);
        }
    }
    if (ran == 0) {
        fprintf(stderr, "no test case matched\n");
        return 1;
    }
    printf("%d of %d cases passed\n", ran - failed, ran);
    return failed ? 1 : 0;
}
