/*
 * Integration test harness, the raw MQTT 3.1.1 socket client: CONNECT and
 * QoS 0 PUBLISH written by hand, for abrupt drops (no DISCONNECT) and silent
 * keepalive timeouts (no PINGREQ). See harness.h.
 */
#include "harness.h"
#include "harness_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

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

struct raw *raw_open(int port)
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
    return r;
}

int raw_local_port(const struct raw *r)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (getsockname(r->fd, (struct sockaddr *)&sa, &len) != 0)
        FAIL("raw client: getsockname: %s", strerror(errno));
    return ntohs(sa.sin_port);
}

void raw_send_connect(struct raw *r, const char *client_id, const char *username,
                      const char *password, int keepalive, bool clean)
{
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
}

int raw_connack(struct raw *r, int timeout_ms)
{
    unsigned char ack[4];
    if (!recv_all(r->fd, ack, sizeof(ack), now_mono_ms() + timeout_ms) || ack[0] != 0x20 ||
        ack[1] != 2)
        return -1;
    return ack[3];
}

struct raw *raw_connect(int port, const char *client_id, const char *username, const char *password,
                        int keepalive, bool clean, int *connack_rc)
{
    struct raw *r = raw_open(port);
    raw_send_connect(r, client_id, username, password, keepalive, clean);
    *connack_rc = raw_connack(r, 5000);
    return r;
}

const char *raw_next_publish(struct raw *r, const char **topic, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    for (;;) {
        unsigned char head;
        size_t len = 0;
        if (!recv_all(r->fd, &head, 1, deadline))
            return NULL;
        for (int shift = 0;; shift += 7) {
            unsigned char b;
            if (shift > 21 || !recv_all(r->fd, &b, 1, deadline))
                return NULL;
            len |= (size_t)(b & 0x7f) << shift;
            if (!(b & 0x80))
                break;
        }
        unsigned char *body = malloc(len + 1);
        if (!body)
            FAIL("out of memory");
        if (!recv_all(r->fd, body, len, deadline)) {
            free(body);
            return NULL;
        }
        int qos = (head >> 1) & 3;
        size_t tlen = len >= 2 ? (size_t)body[0] << 8 | body[1] : 0;
        size_t off = 2 + tlen + (qos > 0 ? 2 : 0);
        if ((head & 0xf0) != 0x30 || off > len) {
            free(body);
            continue; /* not a PUBLISH: nothing this client waits for */
        }
        if (qos == 1) {
            unsigned char ack[4] = {0x40, 2, body[2 + tlen], body[3 + tlen]};
            send_all(r->fd, ack, sizeof(ack));
        }
        *topic = rt_fmt("%.*s", (int)tlen, (const char *)body + 2);
        const char *payload = rt_fmt("%.*s", (int)(len - off), (const char *)body + off);
        free(body);
        return payload;
    }
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
