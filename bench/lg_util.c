/*
 * rtm-loadgen helpers: clocks, latency samples, /proc readers, the flat JSON
 * field finder, and the result rows (lg.h).
 */
#define _GNU_SOURCE /* memmem */
#include "lg.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * LG_NS + ts.tv_nsec;
}

int64_t lg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- samples ---------------------------------------------------------------------- */

void lg_samples_add(struct lg_samples *s, int64_t v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        int64_t *nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv)
            lg_die("out of memory for %zu samples", cap);
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

void lg_samples_clear(struct lg_samples *s)
{
    s->n = 0;
}

void lg_samples_free(struct lg_samples *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t lg_pct(struct lg_samples *s, double pct)
{
    if (s->n == 0)
        return -1;
    qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
    size_t rank = (size_t)ceil(pct / 100.0 * (double)s->n);
    if (rank < 1)
        rank = 1;
    return s->v[rank - 1];
}

double lg_pct_ns(struct lg_samples *s, double pct)
{
    return s->n ? (double)lg_pct(s, pct) : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lg_median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --- /proc ------------------------------------------------------------------------ */

long lg_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static int64_t schedstat_ns(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long ns = -1;
    if (fscanf(f, "%lld", &ns) != 1)
        ns = -1;
    fclose(f);
    return ns;
}

int64_t lg_cpu_ns(int pid)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, pid);
    else
        snprintf(path, sizeof(path), "/proc/self/schedstat");
    return schedstat_ns(path);
}

long lg_preempted(int pid)
{
    char path[64], line[128];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0) {
            n = strtol(line + 27, NULL, 10);
            break;
        }
    }
    fclose(f);
    return n;
}

int64_t lg_threads_cpu_ns(int pid)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int64_t sum = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int tid = atoi(e->d_name);
        if (tid <= 0 || tid == pid)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tid);
        int64_t ns = schedstat_ns(path);
        sum += ns > 0 ? ns : 0;
    }
    closedir(d);
    return sum;
}

int64_t lg_proc_cpu_ns(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The fields after the command name, which ends at the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (int64_t)((utime + stime) * (unsigned long long)(LG_NS / sysconf(_SC_CLK_TCK)));
}

/* The value in the "TcpExt:" value line under the column `name`. */
static long long tcpext(const char *header, const char *values, const char *name)
{
    int col = 0;
    const char *h = header;
    for (; h && strncmp(h, name, strlen(name)) != 0; col++) {
        h = strchr(h, ' ');
        h = h ? h + 1 : NULL;
    }
    const char *v = values;
    for (int i = 0; h && v && i < col; i++) {
        v = strchr(v, ' ');
        v = v ? v + 1 : NULL;
    }
    return h && v ? atoll(v) : -1;
}

long long lg_listen_overflows(void)
{
    FILE *f = fopen("/proc/net/netstat", "r");
    if (!f)
        return -1;
    static char header[8192], values[8192];
    long long n = -1;
    while (fgets(header, sizeof(header), f) && fgets(values, sizeof(values), f)) {
        if (strncmp(header, "TcpExt:", 7) == 0) {
            n = tcpext(header + 8, values + 8, "ListenOverflows ");
            break;
        }
    }
    fclose(f);
    return n;
}

/* --- flat JSON ---------------------------------------------------------------------- */

const char *lg_field(const char *json, size_t json_len, const char *key, size_t *len)
{
    char pat[64];
    int pn = snprintf(pat, sizeof(pat), "\"%s\":", key);
    if (pn <= 0 || (size_t)pn >= sizeof(pat))
        return NULL;
    const char *p = memmem(json, json_len, pat, (size_t)pn);
    if (!p)
        return NULL;
    p += pn;
    const char *end = json + json_len;
    if (p < end && *p == '"') {
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q)
            return NULL;
        *len = (size_t)(q - p - 1);
        return p + 1;
    }
    const char *q = p;
    while (q < end && *q != ',' && *q != '}')
        q++;
    *len = (size_t)(q - p);
    return p;
}

long long lg_field_ll(const char *json, size_t json_len, const char *key, long long dflt)
{
    size_t len = 0;
    const char *v = lg_field(json, json_len, key, &len);
    if (!v || len == 0)
        return dflt;
    long long n = 0;
    bool neg = *v == '-';
    for (size_t i = neg ? 1 : 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
        n = n * 10 + (v[i] - '0');
    return neg ? -n : n;
}

void lg_put19(char *out, long long n)
{
    for (int i = 18; i >= 0; i--) {
        out[i] = (char)('0' + n % 10);
        n /= 10;
    }
}

/* --- results ------------------------------------------------------------------------ */

static void fmt_num(char *buf, size_t size, double v, int digits)
{
    if (isnan(v))
        snprintf(buf, size, "n/a");
    else if (isinf(v))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.*f", digits, v);
}

/* "pass", "miss", "n/a" or "-" for `target` (see lg_row). */
static const char *verdict(const char *target, double plugin, double ratio)
{
    char op[3] = "";
    double limit = 0;
    int used = 0;
    if (!target || sscanf(target, "%2[<>=] %lf%n", op, &limit, &used) < 2)
        return "-";
    double v = target[used] == 'x' ? ratio : plugin;
    if (!isfinite(v))
        return "n/a";
    bool ok = strcmp(op, ">=") == 0 ? v >= limit : strcmp(op, "<=") == 0 ? v <= limit : v < limit;
    return ok ? "pass" : "miss";
}

void lg_row(const char *key, const char *what, const char *unit, int digits, double plugin,
            double baseline, double ratio, const char *target)
{
    if (isnan(ratio) && isfinite(plugin) && isfinite(baseline) && baseline != 0)
        ratio = plugin / baseline;
    if (isnan(ratio) && isinf(baseline))
        ratio = INFINITY; /* no baseline: "-" */
    char p[32], b[32], q[32];
    fmt_num(p, sizeof(p), plugin, digits);
    fmt_num(b, sizeof(b), baseline, digits);
    fmt_num(q, sizeof(q), ratio, 2);
    printf("ROW\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", key, what, unit, p, b, q, target ? target : "-",
           verdict(target, plugin, ratio));
    fflush(stdout);
}

void lg_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

_Noreturn void lg_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rtm-loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}
