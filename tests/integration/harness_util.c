/*
 * Integration test harness, the core every test case runs on: time, failing
 * (rt_fail and the JSON field assertions), strings that live until the case
 * ends, and the runner that forks each case. See harness.h.
 */
#include "harness.h"
#include "harness_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

/* Per test case; multiplied by rt_time_scale(). */
#define CASE_TIMEOUT_MS 60000

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

void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void rt_wait_ms(int ms)
{
    pause_ms(ms);
}

/* ------------------------------------------------------------------------ */
/* valgrind and the time scale                                               */

/* Under valgrind the broker starts in seconds rather than milliseconds, and
 * its TLS handshakes and exit (the leak check) are slow too; message latency
 * grows less (tens of ms). 5 keeps the widened tolerances meaningful while
 * leaving room for a loaded 2-core CI machine. */
#define VALGRIND_TIME_SCALE 5

bool rt_valgrind(void)
{
    const char *v = getenv("RTM_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

int rt_time_scale(void)
{
    if (!rt_valgrind())
        return 1;
    const char *v = getenv("RTM_TIME_SCALE");
    if (!v || !*v)
        return VALGRIND_TIME_SCALE;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > 100)
        FAIL("RTM_TIME_SCALE=%s: expected a whole number from 1 to 100", v);
    return (int)n;
}

int rt_slack_ms(int ms)
{
    return ms * rt_time_scale();
}

/* ------------------------------------------------------------------------ */
/* failing                                                                   */

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

_Noreturn void rt_fail(const char *file, int line, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "\nFAIL at %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    harness_brokers_on_fail();
    run_at_end(true);
    fflush(stderr);
    _exit(1);
}

void fail_json(const char *file, int line, const cJSON *obj, const char *fmt, ...)
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

void rt_expect_ts_now(const char *file, int line, const cJSON *obj)
{
    long long ts = rt_get_int(file, line, obj, "ts");
    long long now = now_wall_ms();
    if (ts < now - 10000 || ts > now + 10000)
        fail_json(file, line, obj, "ts %lld is not near the current time %lld (ms since epoch)", ts,
                  now);
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
/* runner                                                                    */

static void run_case(const struct test_case *tc)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    mosquitto_lib_init();
    tc->fn();
    harness_brokers_free_all();
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
    if (!rt_print_broker())
        return 1;
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
            if (now_mono_ms() - start > (int64_t)CASE_TIMEOUT_MS * rt_time_scale()) {
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
                printf("FAIL %s: no result within %d s\n", tc->name,
                       CASE_TIMEOUT_MS / 1000 * rt_time_scale());
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

pid_t rt_spawn_logged(const char *path, char *const argv[], char *const envp[],
                      const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        FAIL("cannot open %s: %s", log_path, strerror(errno));
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
        execve(path, argv, envp);
        _exit(127);
    }
    close(fd);
    return pid;
}

const char *rt_mint_token(const char *secret, const char *uid, long long expiry_s)
{
    const char *tool = getenv("RTM_TOKEN_TOOL");
    CHECKF(tool && *tool, "RTM_TOKEN_TOOL is not set (ctest sets it)");
    if (expiry_s == 0)
        expiry_s = (long long)time(NULL) + 3600;
    const char *cmd =
        rt_fmt("RTM_TOKEN_SECRET='%s' '%s' --uid '%s' --expiry %lld", secret, tool, uid, expiry_s);
    FILE *p = popen(cmd, "r");
    CHECKF(p, "cannot run %s", cmd);
    char token[128] = "";
    bool got = fgets(token, sizeof(token), p) != NULL;
    int status = pclose(p);
    CHECKF(got && status == 0, "%s failed (status %d)", cmd, status);
    token[strcspn(token, "\n")] = '\0';
    return rt_fmt("%s", token);
}
