/*
 * rtm-mock-jpush: the mock JPush of the benchmark (bench/run.sh, push rows).
 *
 *   rtm-mock-jpush --port 0 --state-dir DIR [--app-key K --master-secret S]
 *
 * The same command line, port file and API as tests/mock_jpush/mock_jpush.py
 * (see its README), reduced to what the benchmark uses, so that the mock is
 * never what a push measurement measures: one thread, one epoll loop,
 * non-blocking sockets, HTTP/1.1 keep-alive, a listen backlog of 4096, and
 * answers held back by a timer instead of a sleeping thread per request.
 *
 * POST /v3/push checks, like the Python mock, Basic auth (401, JPush error
 * 1004), Content-Type application/json (400, error 1003) and that the body
 * is a JSON object (400, error 1003); it records the request and answers
 * with the current behaviour, by default 200 {"sendno":"0","msg_id":"N"},
 * after its delay_ms.
 *
 * Control API (no auth):
 *   POST /_mock/behaviour  {"status": S, "delay_ms": D} (either or both,
 *                          "mode" "ok"/"status" accepted): the answer from
 *                          now on. "times", "hang", "drop", "headers" and
 *                          "body" are the Python mock's only (400 here).
 *   GET  /_mock/requests   the recorded push requests, as a JSON list of
 *                          {"seq","method","path","time","elapsed_ms",
 *                           "body","answer":{"status","delay_ms"}}
 *   POST /_mock/reset      forgets records and the behaviour; msg_id restarts
 *
 * Binds 127.0.0.1 only. Writes DIR/port (atomically) once listening and
 * removes it on SIGTERM or SIGINT, then exits 0. Logs control requests and
 * refused pushes to stderr, and a count of answered pushes at exit.
 */
#define _GNU_SOURCE /* accept4, epoll_pwait2, signalfd */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#define BACKLOG    4096
#define IN_MAX     (64 * 1024) /* one request, head and body */
#define MAX_EVENTS 256
#define NS         1000000000LL

struct conn {
    int fd;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off, out_cap;
    bool close_after; /* once `out` is written */
    bool held;        /* an answer waits in `out` until `due` */
    int64_t due;
};

struct rec {
    double time;
    int64_t elapsed_ms;
    int status;
    int delay_ms;
    char *body; /* the request body when it is JSON, else NULL */
};

static struct {
    int lfd, ep, sfd;
    struct conn **conns;
    size_t nconns, cap;
    struct rec *recs;
    size_t nrecs, rcap;
    int status, delay_ms; /* the behaviour */
    unsigned long msg_id;
    unsigned long answered;
    int64_t started;
    char auth[512]; /* the expected Authorization value */
} g;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mock_jpush %02d:%02d:%02d.%03ld %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, line);
}

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "rtm-mock-jpush: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        die("out of memory");
    return q;
}

/* --- a growing text buffer ------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("vsnprintf");
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
}

/* --- state ----------------------------------------------------------------- */

static void reset(void)
{
    for (size_t i = 0; i < g.nrecs; i++)
        free(g.recs[i].body);
    g.nrecs = 0;
    g.status = 200;
    g.delay_ms = 0;
    g.msg_id = 1;
}

/* --- connections ------------------------------------------------------------ */

static void conn_close(struct conn *c)
{
    for (size_t i = 0; i < g.nconns; i++) {
        if (g.conns[i] == c) {
            g.conns[i] = g.conns[--g.nconns];
            break;
        }
    }
    close(c->fd); /* epoll forgets it with it */
    free(c->in);
    free(c->out);
    free(c);
}

static void watch(struct conn *c, bool out)
{
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("epoll_ctl");
}

/* Writes what it can of `out`; false when the connection is gone. */
static bool flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(c, true);
            return true;
        }
        if (n <= 0) {
            conn_close(c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    if (c->close_after) {
        conn_close(c);
        return false;
    }
    return true;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    default:
        return status >= 500 ? "Server Error" : "Mock";
    }
}

/* Queues one answer on `c`; sent at once unless `delay_ms`. */
static void answer(struct conn *c, int status, const char *body, int delay_ms)
{
    struct buf b = {c->out, c->out_len, c->out_cap};
    bprintf(&b,
            "HTTP/1.1 %d %s\r\nServer: rtm-mock-jpush\r\nContent-Type: application/json\r\n"
            "Content-Length: %zu\r\n%s\r\n%s",
            status, reason(status), strlen(body), c->close_after ? "Connection: close\r\n" : "",
            body);
    c->out = b.p;
    c->out_len = b.len;
    c->out_cap = b.cap;
    if (delay_ms > 0) {
        c->held = true;
        c->due = mono_ns() + (int64_t)delay_ms * 1000000;
    }
}

/* --- requests ----------------------------------------------------------------- */

struct request {
    char method[16];
    char path[256];
    const char *auth, *ctype, *conn_hdr;
    size_t auth_len, ctype_len, conn_len;
    long long length;
    bool chunked, http10;
    const char *body;
};

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

/* Parses the head ending at `end` (the blank line); false when malformed. */
static bool parse_head(const char *p, const char *end, struct request *r)
{
    memset(r, 0, sizeof(*r));
    r->length = 0;
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol)
        eol = end;
    char version[16] = "";
    char line[320];
    snprintf(line, sizeof(line), "%.*s", (int)(eol - p), p);
    if (sscanf(line, "%15s %255s %15s", r->method, r->path, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0)
        return false;
    r->http10 = strcmp(version, "HTTP/1.0") == 0;
    for (p = eol + 2; p < end; p = eol + 2) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t len = (size_t)(eol - p), vlen;
        const char *v;
        if (header_is(p, len, "Content-Length", &v, &vlen)) {
            char num[24];
            snprintf(num, sizeof(num), "%.*s", (int)(vlen < 23 ? vlen : 23), v);
            char *x;
            r->length = strtoll(num, &x, 10);
            if (*x || r->length < 0)
                return false;
        } else if (header_is(p, len, "Transfer-Encoding", &v, &vlen)) {
            r->chunked = true;
        } else if (header_is(p, len, "Authorization", &v, &vlen)) {
            r->auth = v;
            r->auth_len = vlen;
        } else if (header_is(p, len, "Content-Type", &v, &vlen)) {
            r->ctype = v;
            r->ctype_len = vlen;
        } else if (header_is(p, len, "Connection", &v, &vlen)) {
            r->conn_hdr = v;
            r->conn_len = vlen;
        }
    }
    return true;
}

static bool is_json_type(const struct request *r)
{
    if (!r->ctype)
        return false;
    size_t n = r->ctype_len;
    const char *semi = memchr(r->ctype, ';', n);
    if (semi)
        n = (size_t)(semi - r->ctype);
    while (n > 0 && (r->ctype[n - 1] == ' ' || r->ctype[n - 1] == '\t'))
        n--;
    return n == 16 && strncasecmp(r->ctype, "application/json", 16) == 0;
}

static void record(const char *body, size_t len, bool json, int status, int delay_ms)
{
    if (g.nrecs == g.rcap) {
        g.rcap = g.rcap ? g.rcap * 2 : 1024;
        g.recs = xrealloc(g.recs, g.rcap * sizeof(*g.recs));
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct rec *r = &g.recs[g.nrecs++];
    r->time = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
    r->elapsed_ms = (mono_ns() - g.started) / 1000000;
    r->status = status;
    r->delay_ms = delay_ms;
    r->body = json ? strndup(body, len) : NULL;
}

static const char *error_body(int status)
{
    if (status == 400)
        return "{\"error\":{\"code\":1011,\"message\":\"cannot find user by this audience\"}}";
    if (status == 401)
        return "{\"error\":{\"code\":1004,\"message\":\"Authen failed\"}}";
    if (status == 429)
        return "{\"error\":{\"code\":2002,\"message\":\"Request times out of limit\"}}";
    if (status >= 500)
        return "{\"error\":{\"code\":1000,\"message\":\"Server Internal error\"}}";
    return "{\"error\":{\"code\":1003,\"message\":\"mock error\"}}";
}

static void post_push(struct conn *c, const struct request *r)
{
    size_t len = (size_t)r->length;
    cJSON *body = cJSON_ParseWithLength(r->body, len);
    bool json = body != NULL;
    const char *refusal = NULL;
    int status = 0;
    if (!r->auth || r->auth_len != strlen(g.auth) || strncmp(r->auth, g.auth, r->auth_len) != 0) {
        status = 401;
        refusal = "{\"error\":{\"code\":1004,\"message\":\"Authen failed\"}}";
    } else if (!is_json_type(r)) {
        status = 400;
        refusal =
            "{\"error\":{\"code\":1003,\"message\":\"Content-Type must be application/json\"}}";
    } else if (!cJSON_IsObject(body)) {
        status = 400;
        refusal = "{\"error\":{\"code\":1003,\"message\":\"the body must be a JSON object\"}}";
    }
    if (refusal) {
        record(r->body, len, json, status, 0);
        say("POST %s -> %d (refused)", r->path, status);
        answer(c, status, refusal, 0);
        cJSON_Delete(body);
        return;
    }
    record(r->body, len, json, g.status, g.delay_ms);
    char ok[128];
    if (g.status == 200) {
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(body, "options");
        const cJSON *sendno = cJSON_GetObjectItemCaseSensitive(opts, "sendno");
        snprintf(ok, sizeof(ok), "{\"sendno\":\"%lld\",\"msg_id\":\"%lu\"}",
                 cJSON_IsNumber(sendno) ? (long long)sendno->valuedouble : 0LL, g.msg_id++);
    }
    answer(c, g.status, g.status == 200 ? ok : error_body(g.status), g.delay_ms);
    g.answered++;
    cJSON_Delete(body);
}

static void post_behaviour(struct conn *c, const struct request *r)
{
    cJSON *o = cJSON_ParseWithLength(r->body, (size_t)r->length);
    const char *why = NULL;
    int status = g.status, delay = g.delay_ms;
    if (!cJSON_IsObject(o))
        why = "a behaviour here is one JSON object";
    for (const cJSON *it = o ? o->child : NULL; it && !why; it = it->next) {
        if (strcmp(it->string, "status") == 0 && cJSON_IsNumber(it))
            status = (int)it->valuedouble;
        else if (strcmp(it->string, "delay_ms") == 0 && cJSON_IsNumber(it))
            delay = (int)it->valuedouble;
        else if (strcmp(it->string, "mode") != 0 || !cJSON_IsString(it))
            why = "the bench mock takes only status, delay_ms and mode";
    }
    if (!why && (status < 200 || status > 599 || delay < 0))
        why = "status must be 200-599 and delay_ms >= 0";
    cJSON_Delete(o);
    char body[160];
    if (why) {
        snprintf(body, sizeof(body), "{\"error\":\"%s\"}", why);
        answer(c, 400, body, 0);
        say("POST %s -> 400 (%s)", r->path, why);
        return;
    }
    g.status = status;
    g.delay_ms = delay;
    snprintf(body, sizeof(body), "{\"queue\":[],\"default\":{\"status\":%d,\"delay_ms\":%d}}",
             status, delay);
    answer(c, 200, body, 0);
    say("POST %s -> 200 (status %d, delay_ms %d)", r->path, status, delay);
}

static void get_requests(struct conn *c)
{
    struct buf b = {NULL, 0, 0};
    bprintf(&b, "[");
    for (size_t i = 0; i < g.nrecs; i++) {
        const struct rec *r = &g.recs[i];
        bprintf(&b,
                "%s{\"seq\":%zu,\"method\":\"POST\",\"path\":\"/v3/push\",\"time\":%.3f,"
                "\"elapsed_ms\":%lld,\"body\":%s,\"answer\":{\"status\":%d,\"delay_ms\":%d}}",
                i ? "," : "", i + 1, r->time, (long long)r->elapsed_ms, r->body ? r->body : "null",
                r->status, r->delay_ms);
    }
    bprintf(&b, "]");
    answer(c, 200, b.p, 0);
    free(b.p);
    say("GET /_mock/requests -> 200 (%zu requests)", g.nrecs);
}

static void dispatch(struct conn *c, const struct request *r)
{
    bool post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    const char *q = strchr(r->path, '?');
    size_t plen = q ? (size_t)(q - r->path) : strlen(r->path);
    if (plen == 8 && strncmp(r->path, "/v3/push", 8) == 0) {
        if (post)
            post_push(c, r);
        else
            answer(c, 405, "{\"error\":{\"code\":1001,\"message\":\"Only support HTTP Post\"}}", 0);
    } else if (post && plen == 16 && strncmp(r->path, "/_mock/behaviour", plen) == 0) {
        post_behaviour(c, r);
    } else if (get && plen == 15 && strncmp(r->path, "/_mock/requests", plen) == 0) {
        get_requests(c);
    } else if (post && plen == 12 && strncmp(r->path, "/_mock/reset", plen) == 0) {
        reset();
        answer(c, 200, "{\"reset\":true}", 0);
        say("POST /_mock/reset -> 200");
    } else {
        answer(c, 404, "{\"error\":{\"code\":1000,\"message\":\"no such path\"}}", 0);
        say("%s %s -> 404", r->method, r->path);
    }
}

/* Answers the complete requests in `in`, one at a time and in order: the
 * next request is read only once the answer before it is written, so a held
 * answer (delay_ms) holds back the ones after it. False when `c` is gone. */
static bool serve(struct conn *c)
{
    while (!c->held) {
        if (c->out_len > 0 || c->close_after) {
            if (!flush_out(c))
                return false;
            if (c->out_len > 0)
                return true; /* the rest when the socket is writable */
        }
        char *head_end = c->in_len ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
        if (!head_end) {
            if (c->in_len < IN_MAX)
                return true;
            c->close_after = true;
            answer(c, 413, "{\"error\":\"request head too large\"}", 0);
            continue;
        }
        struct request r;
        size_t head = (size_t)(head_end - c->in) + 4;
        if (!parse_head(c->in, head_end + 2, &r)) {
            c->close_after = true;
            answer(c, 400, "{\"error\":\"malformed request\"}", 0);
            continue;
        }
        if (r.chunked || r.length > IN_MAX - (long long)head) {
            c->close_after = true;
            answer(c, r.chunked ? 411 : 413, "{\"error\":\"send a Content-Length body\"}", 0);
            continue;
        }
        if (c->in_len < head + (size_t)r.length)
            return true; /* the rest of the body is on its way */
        r.body = c->in + head;
        c->close_after =
            r.http10 || (r.conn_hdr && r.conn_len == 5 && strncasecmp(r.conn_hdr, "close", 5) == 0);
        dispatch(c, &r);
        size_t used = head + (size_t)r.length;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    return true;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        if (c->in_len == IN_MAX)
            break;
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
    }
    serve(c);
}

static void on_accept(void)
{
    for (;;) {
        int fd = accept4(g.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of descriptors: the next event retries */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        char *in = malloc(IN_MAX);
        if (!c || !in)
            die("out of memory");
        c->fd = fd;
        c->in = in;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl");
        if (g.nconns == g.cap) {
            g.cap = g.cap ? g.cap * 2 : 64;
            g.conns = xrealloc(g.conns, g.cap * sizeof(*g.conns));
        }
        g.conns[g.nconns++] = c;
    }
}

/* Sends the held answers that are due; returns ns until the next, or -1. */
static int64_t release_due(void)
{
    int64_t now = mono_ns(), next = -1;
    for (size_t i = 0; i < g.nconns;) {
        struct conn *c = g.conns[i];
        if (c->held && c->due <= now) {
            c->held = false;
            if (!serve(c))
                continue; /* closed: another connection moved into slot i */
        }
        if (c->held && (next < 0 || c->due - now < next))
            next = c->due - now;
        i++;
    }
    return next;
}

/* --- start-up ------------------------------------------------------------- */

static void listen_on(int port)
{
    g.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g.lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(g.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(g.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(g.lfd, BACKLOG) != 0)
        die("bind/listen on 127.0.0.1");
}

static int bound_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (getsockname(g.lfd, (struct sockaddr *)&sa, &len) != 0)
        die("getsockname");
    return ntohs(sa.sin_port);
}

static void write_port(const char *dir, int port)
{
    char tmp[4200], final[4200];
    snprintf(tmp, sizeof(tmp), "%s/port.tmp", dir);
    snprintf(final, sizeof(final), "%s/port", dir);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, final) != 0)
        die(tmp);
}

static void usage(void)
{
    fprintf(stderr, "usage: rtm-mock-jpush --port PORT --state-dir DIR [--app-key K] "
                    "[--master-secret S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *key = "test-app-key", *secret = "test-master-secret";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--state-dir") == 0)
            dir = argv[++i];
        else if (strcmp(argv[i], "--app-key") == 0)
            key = argv[++i];
        else if (strcmp(argv[i], "--master-secret") == 0)
            secret = argv[++i];
        else
            usage();
    }
    size_t kl = strlen(key), sl = strlen(secret);
    char cred[320], b64[440];
    if (!dir || kl + sl + 2 > sizeof(cred))
        usage();
    memcpy(cred, key, kl);
    cred[kl] = ':';
    memcpy(cred + kl + 1, secret, sl + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cred, (int)strlen(cred));
    memcpy(g.auth, "Basic ", 6);
    memcpy(g.auth + 6, b64, strlen(b64) + 1);
    g.started = mono_ns();
    reset();

    char stale[4200];
    snprintf(stale, sizeof(stale), "%s/port", dir);
    unlink(stale);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0 || (g.sfd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0)
        die("signalfd");
    signal(SIGPIPE, SIG_IGN);
    listen_on(port);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g.lfd};
    if (g.ep < 0 || epoll_ctl(g.ep, EPOLL_CTL_ADD, g.lfd, &ev) != 0)
        die("epoll");
    ev.data.ptr = &g.sfd;
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.sfd, &ev) != 0)
        die("epoll");
    port = bound_port();
    write_port(dir, port);
    say("listening on http://127.0.0.1:%d", port);

    struct epoll_event evs[MAX_EVENTS];
    for (bool run = true; run;) {
        int64_t next = release_due();
        struct timespec t = {next / NS, next % NS};
        int n = epoll_pwait2(g.ep, evs, MAX_EVENTS, next >= 0 ? &t : NULL, NULL);
        if (n < 0 && errno != EINTR)
            die("epoll_pwait2");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &g.lfd) {
                on_accept();
            } else if (evs[i].data.ptr == &g.sfd) {
                run = false;
            } else {
                struct conn *c = evs[i].data.ptr;
                if (evs[i].events & EPOLLOUT) {
                    watch(c, false);
                    serve(c); /* the rest of the answer, then the next requests */
                } else {
                    on_readable(c);
                }
            }
        }
    }
    say("stopping on a signal: %lu push requests answered", g.answered);
    unlink(stale);
    return 0;
}
