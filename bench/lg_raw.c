/*
 * rtm-loadgen raw connections (lg.h): MQTT 3.1.1 CONNECT, CONNACK and
 * DISCONNECT written by hand on non-blocking sockets in the loop's epoll set,
 * for the presence mode's thousands of connections. A connect that completes
 * at once (loopback usually does) sends CONNECT right away; one that is in
 * progress sends it when the socket becomes writable.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEEPALIVE_S 600

static void raw_fail(struct lg_raw *r)
{
    if (r->fd >= 0) {
        lg_io_del(r->fd);
        close(r->fd);
    }
    r->fd = -1;
    r->up = false;
    r->down = true;
}

/* CONNECT: protocol "MQTT" level 4, clean session, keepalive, client id. */
static void send_connect(struct lg_raw *r)
{
    unsigned char pkt[64];
    size_t idlen = strlen(r->id), n = 0;
    pkt[n++] = 0x10;
    pkt[n++] = (unsigned char)(12 + idlen);
    memcpy(pkt + n, "\x00\x04MQTT\x04\x02", 8);
    n += 8;
    pkt[n++] = KEEPALIVE_S >> 8;
    pkt[n++] = KEEPALIVE_S & 0xff;
    pkt[n++] = (unsigned char)(idlen >> 8);
    pkt[n++] = (unsigned char)(idlen & 0xff);
    memcpy(pkt + n, r->id, idlen);
    n += idlen;
    if (write(r->fd, pkt, n) != (ssize_t)n) {
        raw_fail(r);
        return;
    }
    r->sent = true;
    lg_io_mod(&r->io, r->fd, EPOLLIN);
}

static void read_connack(struct lg_raw *r)
{
    unsigned char buf[4];
    ssize_t n = read(r->fd, buf, (size_t)(4 - r->got));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        raw_fail(r);
        return;
    }
    if (n < 0)
        return;
    /* CONNACK is 20 02 00 <rc>: only the return code matters. */
    r->got += (int)n;
    if (r->got < 4)
        return;
    if (buf[n - 1] != 0) {
        raw_fail(r);
        return;
    }
    r->up = true;
    r->connack_ns = lg_now_ns();
}

static void raw_event(struct lg_io *io, uint32_t events)
{
    struct lg_raw *r = (struct lg_raw *)io; /* io is the first member */
    if (events & (EPOLLERR | EPOLLHUP)) {
        raw_fail(r);
        return;
    }
    if (!r->sent && (events & EPOLLOUT))
        send_connect(r);
    if (r->fd >= 0 && (events & EPOLLIN) && !r->up)
        read_connack(r);
}

static bool raw_open(struct lg_raw *r, int port, const char *id)
{
    memset(r, 0, sizeof(*r));
    r->io.on_event = raw_event;
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        r->down = true;
        return false;
    }
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(r->fd, (struct sockaddr *)&sa, sizeof(sa));
    if ((rc != 0 && errno != EINPROGRESS) || !lg_io_add(&r->io, r->fd, EPOLLIN | EPOLLOUT)) {
        raw_fail(r);
        return false;
    }
    if (rc == 0)
        send_connect(r);
    return true;
}

static size_t settled(const struct lg_raw *rs, size_t n, size_t *up)
{
    size_t s = 0;
    *up = 0;
    for (size_t i = 0; i < n; i++) {
        s += rs[i].up || rs[i].down;
        *up += rs[i].up;
    }
    return s;
}

size_t lg_raw_open_many(struct lg_raw *rs, size_t n, int port, const char *prefix, int pending,
                        int timeout_ms)
{
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    size_t opened = 0, done = 0, up = 0;
    char id[40];
    while (done < n && lg_now_ns() < deadline) {
        while (opened < n && opened - done < (size_t)pending) {
            snprintf(id, sizeof(id), "%s%zu", prefix, opened);
            raw_open(&rs[opened++], port, id);
        }
        lg_poll(1);
        done = settled(rs, opened, &up);
    }
    settled(rs, opened, &up);
    return up;
}

void lg_raw_close_all(struct lg_raw *rs, size_t n)
{
    static const unsigned char disconnect[2] = {0xe0, 0x00};
    for (size_t i = 0; i < n; i++) {
        struct lg_raw *r = &rs[i];
        if (r->fd < 0)
            continue;
        if (r->up && write(r->fd, disconnect, sizeof(disconnect)) != (ssize_t)sizeof(disconnect))
            r->down = true; /* closed below all the same */
        raw_fail(r);
    }
}
