/*
 * rtm-loadgen connections: libmosquitto clients without their threads, all
 * on one epoll set. A readable socket is read with mosquitto_loop_read until
 * it would block (or 64 packets); a client with output queued (a publish
 * made inside a callback, or a full socket buffer) is written at once and
 * watched for EPOLLOUT only while output remains.
 */
#define _GNU_SOURCE /* epoll_pwait2 */
#include "lg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS      512
#define READS_PER_EVENT 64

static int g_ep = -1;

void lg_net_init(void)
{
    mosquitto_lib_init();
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        lg_die("epoll_create1: %s", strerror(errno));
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    struct lg_conn *c = ud;
    (void)m;
    c->connack_rc = rc;
    if (rc == 0) {
        c->up = true;
        c->connack_ns = lg_now_ns();
    } else {
        c->down = true;
    }
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    struct lg_conn *c = ud;
    (void)m;
    (void)rc;
    c->up = false;
    c->down = true;
    c->fd = -1; /* libmosquitto closed it; epoll forgot it with it */
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    struct lg_conn *c = ud;
    (void)m;
    (void)mid;
    c->acks++;
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
    struct lg_conn *c = ud;
    (void)m;
    (void)mid;
    for (int i = 0; i < n; i++) {
        if (granted[i] > 2)
            lg_die("subscription refused (0x%02x)", granted[i]);
    }
    c->subs--;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    struct lg_conn *c = ud;
    (void)m;
    c->recvd++;
    if (c->on_msg)
        c->on_msg(c, msg, lg_now_ns());
}

bool lg_io_add(struct lg_io *io, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool lg_io_mod(struct lg_io *io, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(g_ep, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void lg_io_del(int fd)
{
    epoll_ctl(g_ep, EPOLL_CTL_DEL, fd, NULL);
}

/* EPOLLOUT exactly while libmosquitto has output queued. */
static void sync_out(struct lg_conn *c)
{
    if (c->fd < 0)
        return;
    bool want = mosquitto_want_write(c->mosq);
    if (want != c->want_out && lg_io_mod(&c->io, c->fd, EPOLLIN | (want ? EPOLLOUT : 0)))
        c->want_out = want;
}

static void flush(struct lg_conn *c)
{
    if (c->fd >= 0 && mosquitto_want_write(c->mosq))
        mosquitto_loop_write(c->mosq, 1);
    sync_out(c);
}

static void handle(struct lg_io *io, uint32_t events)
{
    struct lg_conn *c = (struct lg_conn *)io; /* io is the first member */
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        mosquitto_loop_write(c->mosq, 1);
    if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        for (int i = 0; i < READS_PER_EVENT && c->fd >= 0; i++) {
            errno = 0;
            int rc = mosquitto_loop_read(c->mosq, 1);
            if (rc != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK)
                break;
        }
    }
    flush(c); /* what callbacks published */
}

bool lg_open(struct lg_conn *c, int port, const char *client_id, lg_msg_fn fn, void *ud, int idx)
{
    memset(c, 0, sizeof(*c));
    c->io.on_event = handle;
    c->fd = -1;
    c->on_msg = fn;
    c->ud = ud;
    c->idx = idx;
    c->mosq = mosquitto_new(client_id, true, c);
    if (!c->mosq)
        lg_die("mosquitto_new: %s", strerror(errno));
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(c->mosq, MOSQ_OPT_SEND_MAXIMUM, 0); /* no client-side inflight cap */
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_callback_set(c->mosq, on_publish);
    mosquitto_subscribe_callback_set(c->mosq, on_subscribe);
    mosquitto_message_callback_set(c->mosq, on_message);
    int rc = mosquitto_connect_async(c->mosq, LG_HOST, port, 600);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING) {
        c->down = true;
        return false;
    }
    c->fd = mosquitto_socket(c->mosq);
    if (c->fd < 0 || !lg_io_add(&c->io, c->fd, EPOLLIN)) {
        c->down = true;
        return false;
    }
    sync_out(c);
    return true;
}

static void dispatch(void *ptr, uint32_t events)
{
    struct lg_io *io = ptr;
    io->on_event(io, events);
}

void lg_poll(int timeout_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(g_ep, evs, MAX_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++)
        dispatch(evs[i].data.ptr, evs[i].events);
}

void lg_poll_us(int64_t timeout_us)
{
    struct epoll_event evs[MAX_EVENTS];
    struct timespec ts = {timeout_us / 1000000, (long)(timeout_us % 1000000) * 1000};
    int n = epoll_pwait2(g_ep, evs, MAX_EVENTS, &ts, NULL);
    if (n < 0 && errno == ENOSYS)
        n = epoll_wait(g_ep, evs, MAX_EVENTS, (int)((timeout_us + 999) / 1000));
    for (int i = 0; i < n; i++)
        dispatch(evs[i].data.ptr, evs[i].events);
}

void lg_pump(int ms)
{
    int64_t end = lg_now_ns() + (int64_t)ms * LG_MS;
    for (int64_t now = lg_now_ns(); now < end; now = lg_now_ns())
        lg_poll((int)((end - now + LG_MS - 1) / LG_MS));
}

static size_t count_settled(const struct lg_conn *cs, size_t n, size_t *up)
{
    size_t settled = 0;
    *up = 0;
    for (size_t i = 0; i < n; i++) {
        settled += cs[i].up || cs[i].down;
        *up += cs[i].up;
    }
    return settled;
}

size_t lg_open_many(struct lg_conn *cs, size_t n, int port, const char *prefix, lg_msg_fn fn,
                    void *ud, int pending, int timeout_ms)
{
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    size_t opened = 0, settled = 0, up = 0;
    char id[64];
    while (settled < n && lg_now_ns() < deadline) {
        while (opened < n && opened - settled < (size_t)pending) {
            snprintf(id, sizeof(id), "%s%zu", prefix, opened);
            lg_open(&cs[opened], port, id, fn, ud, (int)opened);
            opened++;
        }
        lg_poll(1);
        settled = count_settled(cs, opened, &up);
    }
    count_settled(cs, opened, &up);
    return up;
}

bool lg_subscribe(struct lg_conn *c, const char *filter, int qos)
{
    c->subs++;
    if (mosquitto_subscribe(c->mosq, NULL, filter, qos) != MOSQ_ERR_SUCCESS) {
        c->subs--;
        return false;
    }
    flush(c);
    return true;
}

bool lg_wait_subs(struct lg_conn *cs, size_t n, int timeout_ms)
{
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    for (;;) {
        size_t due = 0;
        for (size_t i = 0; i < n; i++)
            due += cs[i].subs > 0;
        if (due == 0)
            return true;
        if (lg_now_ns() >= deadline)
            return false;
        lg_poll(1);
    }
}

bool lg_subscribe_all(struct lg_conn *cs, size_t n, const char *prefix, const char *fmt, int qos,
                      int timeout_ms)
{
    char uid[64], filter[160];
    for (size_t i = 0; i < n; i++) {
        snprintf(uid, sizeof(uid), "%s%zu", prefix, i);
        snprintf(filter, sizeof(filter), fmt, uid);
        if (!lg_subscribe(&cs[i], filter, qos))
            return false;
    }
    return lg_wait_subs(cs, n, timeout_ms);
}

bool lg_publish(struct lg_conn *c, const char *topic, const void *payload, int len, int qos,
                bool retain)
{
    if (c->fd < 0)
        return false;
    int rc = mosquitto_publish(c->mosq, NULL, topic, len, payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS)
        return false;
    c->sent++;
    sync_out(c);
    return true;
}

bool lg_wait_acks(struct lg_conn *cs, size_t n, int timeout_ms)
{
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    for (;;) {
        size_t due = 0;
        for (size_t i = 0; i < n; i++)
            due += !cs[i].down && cs[i].acks < cs[i].sent;
        if (due == 0)
            return true;
        if (lg_now_ns() >= deadline)
            return false;
        lg_poll(1);
    }
}

void lg_close(struct lg_conn *c)
{
    if (c->mosq && c->fd >= 0) {
        mosquitto_disconnect(c->mosq);
        sync_out(c);
    }
}

void lg_free(struct lg_conn *c)
{
    if (!c->mosq)
        return;
    if (c->fd >= 0)
        lg_io_del(c->fd);
    mosquitto_destroy(c->mosq);
    c->mosq = NULL;
    c->fd = -1;
}

void lg_free_all(struct lg_conn *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lg_free(&cs[i]);
}

void lg_misc(struct lg_conn *cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (cs[i].fd >= 0) {
            mosquitto_loop_misc(cs[i].mosq);
            flush(&cs[i]);
        }
    }
}
