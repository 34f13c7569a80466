/*
 * The registry loader's thread (see rtm_loader.h): a minimal MQTT 3.1.1
 * client that sends CONNECT, SUBSCRIBE and DISCONNECT over a non-blocking
 * socket, every wait bounded by a deadline and sliced so that a stop is
 * seen within SLICE_MS. It shares its flags, the current attempt's secret
 * and its status with the broker thread, under one mutex.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "rtm_loader.h"
#include "rtm_procnet.h"

#define SLICE_MS         50
#define CONNECT_MS       1000
#define CONNACK_MS       2000  /* a TLS or WebSockets listener never answers in MQTT */
#define SUBACK_MS        60000 /* the broker checks every stored registration first */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   60000
#define TARGETS_MAX      32
#define PACKET_MAX       1024
#define SECRET_HEX       32

/* A listener to try. */
struct target {
    struct sockaddr_storage sa;
    socklen_t len;
    char name[64];
};

struct rtm_loader {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;             /* go or stopping changed */
    bool go;                         /* under lock */
    bool stopping;                   /* under lock */
    char secret[SECRET_HEX + 1];     /* under lock: the current attempt's, "" between attempts */
    bool seen;                       /* under lock: this broker saw a login with `secret` */
    struct rtm_loader_status status; /* under lock */
    bool fixed;                      /* an explicit IP:port, in `target` */
    struct target target;
    char client_id[48];
    char filter[256];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct rtm_loader *l)
{
    pthread_mutex_lock(&l->lock);
    bool s = l->stopping;
    pthread_mutex_unlock(&l->lock);
    return s;
}

/* Waits `ms` or until stopped; false when stopped. */
static bool nap(struct rtm_loader *l, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->lock);
    while (!l->stopping && pthread_cond_timedwait(&l->wake, &l->lock, &until) != ETIMEDOUT)
        ;
    bool ok = !l->stopping;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

static bool wait_go(struct rtm_loader *l)
{
    pthread_mutex_lock(&l->lock);
    while (!l->go && !l->stopping)
        pthread_cond_wait(&l->wake, &l->lock);
    bool ok = !l->stopping;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

/* --- the current attempt's credentials -------------------------------------- */

static bool begin_attempt(struct rtm_loader *l, char *secret)
{
    unsigned char raw[SECRET_HEX / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return false;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(secret + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    pthread_mutex_lock(&l->lock);
    memcpy(l->secret, secret, SECRET_HEX + 1);
    l->seen = false;
    pthread_mutex_unlock(&l->lock);
    return true;
}

static bool seen(struct rtm_loader *l)
{
    pthread_mutex_lock(&l->lock);
    bool s = l->seen;
    pthread_mutex_unlock(&l->lock);
    return s;
}

static void end_attempt(struct rtm_loader *l)
{
    pthread_mutex_lock(&l->lock);
    OPENSSL_cleanse(l->secret, sizeof(l->secret));
    l->seen = false;
    pthread_mutex_unlock(&l->lock);
}

bool rtm_loader_login(struct rtm_loader *l, const char *client_id, const char *password)
{
    if (!l || !client_id || !password || strcmp(client_id, l->client_id) != 0)
        return false;
    pthread_mutex_lock(&l->lock);
    size_t n = strlen(l->secret);
    /* Constant time: the secret is a credential. */
    bool match = n > 0 && strlen(password) == n && CRYPTO_memcmp(password, l->secret, n) == 0;
    if (match)
        l->seen = true;
    pthread_mutex_unlock(&l->lock);
    return match;
}

/* --- sockets with deadlines ------------------------------------------------- */

enum io { IO_OK, IO_TIMEOUT, IO_CLOSED, IO_ERROR, IO_STOPPED };

/* Waits until `fd` is ready for `events` or `deadline` passes. */
static enum io wait_fd(struct rtm_loader *l, int fd, short events, int64_t deadline)
{
    for (;;) {
        if (stopping(l))
            return IO_STOPPED;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return IO_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
        if (n > 0)
            return IO_OK;
        if (n < 0 && errno != EINTR)
            return IO_ERROR;
    }
}

static enum io write_all(struct rtm_loader *l, int fd, const uint8_t *buf, size_t len,
                         int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return errno == EPIPE || errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
        enum io w = wait_fd(l, fd, POLLOUT, deadline);
        if (w != IO_OK)
            return w;
    }
    return IO_OK;
}

static enum io read_all(struct rtm_loader *l, int fd, uint8_t *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return IO_CLOSED;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
        enum io w = wait_fd(l, fd, POLLIN, deadline);
        if (w != IO_OK)
            return w;
    }
    return IO_OK;
}

static int connect_to(struct rtm_loader *l, const struct target *t, char *why, size_t len)
{
    int fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, len, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&t->sa, t->len) == 0)
        return fd;
    int err = errno;
    if (err == EINPROGRESS) {
        enum io w = wait_fd(l, fd, POLLOUT, mono_ms() + CONNECT_MS);
        socklen_t elen = sizeof(err);
        if (w == IO_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
            return fd;
        if (w == IO_TIMEOUT)
            snprintf(why, len, "no connection within %d ms", CONNECT_MS);
        else
            snprintf(why, len, "cannot connect: %s", w == IO_STOPPED ? "stopping" : strerror(err));
    } else {
        snprintf(why, len, "cannot connect: %s", strerror(err));
    }
    close(fd);
    return -1;
}

/* --- MQTT 3.1.1 -------------------------------------------------------------- */

/* Appends a length-prefixed string; returns the new end, or NULL if full. */
static uint8_t *put_string(uint8_t *p, const uint8_t *end, const char *s)
{
    size_t len = strlen(s);
    if (len > 0xffff || p + 2 + len > end)
        return NULL;
    *p++ = (uint8_t)(len >> 8);
    *p++ = (uint8_t)len;
    memcpy(p, s, len);
    return p + len;
}

/* Sends one packet: fixed header byte, remaining length, body. */
static enum io send_packet(struct rtm_loader *l, int fd, uint8_t type, const uint8_t *body,
                           size_t len, int64_t deadline)
{
    uint8_t head[5] = {type};
    size_t n = 1;
    size_t rest = len;
    do {
        uint8_t b = rest % 128;
        rest /= 128;
        head[n++] = (uint8_t)(rest ? b | 0x80 : b);
    } while (rest && n < sizeof(head));
    enum io w = write_all(l, fd, head, n, deadline);
    return w == IO_OK ? write_all(l, fd, body, len, deadline) : w;
}

/* Reads packets until one of `type` arrives; its body goes into buf. A
 * packet that does not fit (garbage from a non-MQTT server) is an error. */
static enum io await_packet(struct rtm_loader *l, int fd, uint8_t type, uint8_t *buf, size_t size,
                            size_t *len, int64_t deadline)
{
    for (;;) {
        uint8_t h;
        size_t rest = 0;
        enum io r = read_all(l, fd, &h, 1, deadline);
        for (int shift = 0, more = 1; r == IO_OK && more; shift += 7) {
            uint8_t b = 0;
            if (shift > 21)
                return IO_ERROR;
            if ((r = read_all(l, fd, &b, 1, deadline)) != IO_OK)
                break;
            rest |= (size_t)(b & 0x7f) << shift;
            more = b & 0x80;
        }
        if (r == IO_OK && rest > size)
            return IO_ERROR;
        if (r == IO_OK)
            r = read_all(l, fd, buf, rest, deadline);
        if (r != IO_OK)
            return r;
        if ((h & 0xf0) == type) {
            *len = rest;
            return IO_OK;
        }
    }
}

static const char *no_answer(enum io r, const char *packet)
{
    switch (r) {
    case IO_TIMEOUT:
        return packet[0] == 'C' ? "no MQTT answer within 2 s (a TLS or WebSockets listener?)"
                                : "no SUBACK in time";
    case IO_CLOSED:
        return packet[0] == 'C' ? "closed without an MQTT answer (a TLS or WebSockets listener?)"
                                : "closed before the SUBACK";
    case IO_STOPPED:
        return "stopping";
    default:
        return packet[0] == 'C' ? "not an MQTT answer" : "bad SUBACK";
    }
}

/* CONNECT with this attempt's secret; CONNACK; then the proof that this
 * broker saw the login. NULL when logged in to this broker. */
static const char *log_in(struct rtm_loader *l, int fd, uint8_t *body, const char *secret,
                          int64_t deadline)
{
    uint8_t *p = body, *end = body + PACKET_MAX;
    static const uint8_t head[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 60};
    memcpy(p, head, sizeof(head)); /* MQTT 3.1.1, username + password + clean session */
    p += sizeof(head);
    if (!(p = put_string(p, end, l->client_id)) || !(p = put_string(p, end, "rtm-registry")) ||
        !(p = put_string(p, end, secret)))
        return "CONNECT too large";
    size_t len = (size_t)(p - body);
    enum io r = send_packet(l, fd, 0x10, body, len, deadline);
    OPENSSL_cleanse(body, len);
    if (r == IO_OK)
        r = await_packet(l, fd, 0x20, body, PACKET_MAX, &len, deadline);
    if (r != IO_OK || len < 2)
        return no_answer(r, "CONNACK");
    if (body[1] != 0)
        return "refused the login (load mosquitto-rtm before other authentication plugins)";
    if (!seen(l))
        return "is not this broker: it accepted the registry loader's login, which this broker "
               "never saw";
    return NULL;
}

static const char *session(struct rtm_loader *l, int fd, const char *secret)
{
    uint8_t body[PACKET_MAX];
    const char *why = log_in(l, fd, body, secret, mono_ms() + CONNACK_MS);
    if (why) {
        send_packet(l, fd, 0xe0, body, 0, mono_ms() + SLICE_MS);
        return why;
    }
    uint8_t *p = body, *end = body + sizeof(body);
    *p++ = 0;
    *p++ = 1; /* packet id */
    if (!(p = put_string(p, end, l->filter)) || p >= end)
        return "SUBSCRIBE too large";
    *p++ = 0; /* QoS 0 */
    int64_t deadline = mono_ms() + SUBACK_MS;
    size_t len;
    enum io r = send_packet(l, fd, 0x82, body, (size_t)(p - body), deadline);
    if (r == IO_OK)
        r = await_packet(l, fd, 0x90, body, sizeof(body), &len, deadline);
    if (r != IO_OK || len < 3)
        return no_answer(r, "SUBACK");
    if (body[2] & 0x80)
        return "refused the subscription";
    send_packet(l, fd, 0xe0, body, 0, mono_ms() + SLICE_MS);
    return NULL;
}

/* One listener: true when the registry was read back through it. */
static bool attempt(struct rtm_loader *l, const struct target *t, char *why, size_t len)
{
    char secret[SECRET_HEX + 1];
    if (!begin_attempt(l, secret)) {
        snprintf(why, len, "no random bytes for the login secret");
        return false;
    }
    const char *failed = "stopping";
    int fd = connect_to(l, t, why, len);
    if (fd >= 0) {
        failed = session(l, fd, secret);
        close(fd);
        if (failed)
            snprintf(why, len, "%s", failed);
    }
    end_attempt(l);
    OPENSSL_cleanse(secret, sizeof(secret));
    return fd >= 0 && !failed;
}

/* --- finding this broker's listeners ------------------------------------------ */

struct listening {
    struct rtm_procnet_socket *v;
    size_t n, cap;
};

/* Every listening socket of the network namespace, of one family. */
static int scan_table(const char *path, int family, struct listening *ls)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -1; /* no tcp6 without IPv6 */
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        struct rtm_procnet_socket s;
        size_t k = 0;
        if (!rtm_procnet_listening(line, family, &s, &k, 1) || k != 1)
            continue;
        if (ls->n == ls->cap) {
            size_t cap = ls->cap ? 2 * ls->cap : 16;
            struct rtm_procnet_socket *v = realloc(ls->v, cap * sizeof(*v));
            if (!v)
                break;
            ls->v = v;
            ls->cap = cap;
        }
        ls->v[ls->n++] = s;
    }
    fclose(f);
    return 0;
}

static void add_target(struct target *out, size_t *n, const struct rtm_procnet_socket *s)
{
    struct target t;
    memset(&t, 0, sizeof(t));
    if (s->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&t.sa;
        in->sin_family = AF_INET;
        in->sin_port = htons(s->port);
        memcpy(&in->sin_addr, s->addr, 4);
        t.len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t.sa;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(s->port);
        memcpy(&in6->sin6_addr, s->addr, 16);
        t.len = sizeof(*in6);
    }
    rtm_procnet_name(s, t.name, sizeof(t.name));
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(out[i].name, t.name) == 0)
            return;
    }
    if (*n < TARGETS_MAX)
        out[(*n)++] = t;
}

/* This process's listening sockets, in the order of their fds (the order
 * Mosquitto opened its listeners in). */
static size_t discover(struct target *out, char *why, size_t len)
{
    struct listening ls = {NULL, 0, 0};
    size_t n = 0;
    DIR *d = NULL;
    if (scan_table("/proc/self/net/tcp", AF_INET, &ls) != 0 ||
        scan_table("/proc/self/net/tcp6", AF_INET6, &ls) != 0 || !(d = opendir("/proc/self/fd"))) {
        snprintf(why, len, "cannot read /proc/self: %s", strerror(errno));
        goto out;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char link[64];
        ssize_t k = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
        unsigned long inode;
        if (k <= 0)
            continue;
        link[k] = '\0';
        if (!rtm_procnet_socket_inode(link, &inode))
            continue;
        for (size_t i = 0; i < ls.n; i++) {
            if (ls.v[i].inode == inode)
                add_target(out, &n, &ls.v[i]);
        }
    }
    if (n == 0)
        snprintf(why, len, "found no listening TCP socket of this broker in /proc/self");
out:
    if (d)
        closedir(d);
    free(ls.v);
    return n;
}

/* --- the thread ------------------------------------------------------------ */

/* Appends "name: text" to a "; "-separated list, cut to fit. */
static void append(char *list, size_t size, const char *name, const char *text)
{
    size_t used = strlen(list);
    if (used + 1 < size)
        snprintf(list + used, size - used, "%s%s: %s", used ? "; " : "", name, text);
}

/* One round over the listeners. True when the registry was read back. */
static bool round_once(struct rtm_loader *l, struct rtm_loader_status *st)
{
    struct target targets[TARGETS_MAX];
    size_t n = 0;
    st->error[0] = st->skipped[0] = '\0';
    if (l->fixed)
        targets[n++] = l->target;
    else
        n = discover(targets, st->error, sizeof(st->error));
    for (size_t i = 0; i < n && !stopping(l); i++) {
        char why[200];
        if (attempt(l, &targets[i], why, sizeof(why))) {
            snprintf(st->via, sizeof(st->via), "%s", targets[i].name);
            snprintf(st->skipped, sizeof(st->skipped), "%s", st->error);
            return true;
        }
        append(st->error, sizeof(st->error), targets[i].name, why);
    }
    return false;
}

static void publish(struct rtm_loader *l, const struct rtm_loader_status *st)
{
    pthread_mutex_lock(&l->lock);
    l->status = *st;
    pthread_mutex_unlock(&l->lock);
}

static void *loader_main(void *arg)
{
    struct rtm_loader *l = arg;
    struct rtm_loader_status st;
    memset(&st, 0, sizeof(st));
    int64_t backoff = BACKOFF_FIRST_MS;
    while (wait_go(l)) {
        if (round_once(l, &st)) {
            st.state = RTM_LOADER_DONE;
            publish(l, &st);
            return NULL;
        }
        if (stopping(l))
            return NULL;
        st.failures++;
        st.retry_ms = backoff;
        publish(l, &st);
        if (!nap(l, backoff))
            return NULL;
        backoff = 2 * backoff < BACKOFF_MAX_MS ? 2 * backoff : BACKOFF_MAX_MS;
    }
    return NULL;
}

/* --- lifetime ---------------------------------------------------------------- */

static int init_sync(struct rtm_loader *l)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&l->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        pthread_cond_destroy(&l->wake);
        return -1;
    }
    return 0;
}

static int set_target(struct rtm_loader *l, const char *listener)
{
    if (strcmp(listener, "auto") == 0)
        return 0;
    struct rtm_procnet_socket s;
    if (!rtm_procnet_parse_address(listener, &s))
        return -1;
    size_t n = 0;
    add_target(&l->target, &n, &s);
    l->fixed = true;
    return 0;
}

struct rtm_loader *rtm_loader_start(const char *listener, const char *filter, char *err,
                                    size_t err_len)
{
    unsigned char id[8];
    struct rtm_loader *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (set_target(l, listener) != 0 || strlen(filter) >= sizeof(l->filter)) {
        snprintf(err, err_len, "bad registry listener or filter");
        goto fail;
    }
    if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
        snprintf(err, err_len, "no random bytes for the registry loader");
        goto fail;
    }
    snprintf(l->client_id, sizeof(l->client_id), "rtm-registry-%02x%02x%02x%02x%02x%02x%02x%02x",
             id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]);
    strcpy(l->filter, filter);
    if (init_sync(l) != 0) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, loader_main, l) != 0) {
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->wake);
        snprintf(err, err_len, "cannot start a thread");
        goto fail;
    }
    return l;
fail:
    free(l);
    return NULL;
}

void rtm_loader_go(struct rtm_loader *l)
{
    pthread_mutex_lock(&l->lock);
    l->go = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->lock);
}

void rtm_loader_poll(struct rtm_loader *l, struct rtm_loader_status *out)
{
    pthread_mutex_lock(&l->lock);
    *out = l->status;
    pthread_mutex_unlock(&l->lock);
}

void rtm_loader_stop(struct rtm_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->wake);
    OPENSSL_cleanse(l->secret, sizeof(l->secret));
    free(l);
}
