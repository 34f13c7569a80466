/*
 * The registry loader's thread (see rtm_loader.h): a minimal MQTT 3.1.1
 * client that sends CONNECT, SUBSCRIBE and DISCONNECT over a blocking
 * socket with short timeouts, retrying the connection while the broker is
 * still opening its listeners. It shares only its state word and error text
 * with the broker thread, under a mutex.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rtm_loader.h"

#define CONNECT_TRIES 150 /* every 200 ms: the broker opens its listeners after loading us */
#define IO_TIMEOUT_S  5
#define PACKET_MAX    1024

struct rtm_loader {
    pthread_t thread;
    pthread_mutex_t lock;
    enum rtm_loader_state state; /* under lock */
    bool stopping;               /* under lock */
    char err[256];               /* under lock */
    char host[256];
    char port[8];
    char client_id[64];
    char password[128];
    char filter[256];
};

static bool stopping(struct rtm_loader *l)
{
    pthread_mutex_lock(&l->lock);
    bool s = l->stopping;
    pthread_mutex_unlock(&l->lock);
    return s;
}

static void settle(struct rtm_loader *l, enum rtm_loader_state state, const char *why)
{
    pthread_mutex_lock(&l->lock);
    l->state = state;
    snprintf(l->err, sizeof(l->err), "%s", why);
    pthread_mutex_unlock(&l->lock);
}

static void pause_200ms(void)
{
    struct timespec ts = {0, 200 * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int connect_once(struct rtm_loader *l)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(l->host, l->port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        struct timeval tv = {IO_TIMEOUT_S, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

static int connect_retrying(struct rtm_loader *l)
{
    for (int i = 0; i < CONNECT_TRIES && !stopping(l); i++) {
        int fd = connect_once(l);
        if (fd >= 0)
            return fd;
        pause_200ms();
    }
    return -1;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

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
static int send_packet(int fd, uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t head[5] = {type};
    size_t n = 1;
    size_t rest = len;
    do {
        uint8_t b = rest % 128;
        rest /= 128;
        head[n++] = (uint8_t)(rest ? b | 0x80 : b);
    } while (rest && n < sizeof(head));
    return write_all(fd, head, n) || write_all(fd, body, len) ? -1 : 0;
}

/* Reads packets until one of `type` arrives; its body goes into buf. */
static int await_packet(int fd, uint8_t type, uint8_t *buf, size_t size, size_t *len)
{
    for (;;) {
        uint8_t h;
        size_t rest = 0;
        if (read_all(fd, &h, 1) != 0)
            return -1;
        for (int shift = 0, more = 1; more; shift += 7) {
            uint8_t b;
            if (shift > 21 || read_all(fd, &b, 1) != 0)
                return -1;
            rest |= (size_t)(b & 0x7f) << shift;
            more = b & 0x80;
        }
        if (rest > size || read_all(fd, buf, rest) != 0)
            return -1;
        if ((h & 0xf0) == type) {
            *len = rest;
            return 0;
        }
    }
}

static const char *session(struct rtm_loader *l, int fd)
{
    uint8_t body[PACKET_MAX], *p = body, *end = body + sizeof(body);
    static const uint8_t head[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 60};
    memcpy(p, head, sizeof(head)); /* MQTT 3.1.1, username + password + clean session */
    p += sizeof(head);
    if (!(p = put_string(p, end, l->client_id)) || !(p = put_string(p, end, "rtm-registry")) ||
        !(p = put_string(p, end, l->password)))
        return "CONNECT too large";
    size_t len;
    if (send_packet(fd, 0x10, body, (size_t)(p - body)) != 0 ||
        await_packet(fd, 0x20, body, sizeof(body), &len) != 0 || len < 2)
        return "no CONNACK";
    if (body[1] != 0)
        return "the broker refused the connection";
    p = body;
    *p++ = 0;
    *p++ = 1; /* packet id */
    if (!(p = put_string(p, end, l->filter)))
        return "SUBSCRIBE too large";
    *p++ = 0; /* QoS 0 */
    if (send_packet(fd, 0x82, body, (size_t)(p - body)) != 0 ||
        await_packet(fd, 0x90, body, sizeof(body), &len) != 0 || len < 3)
        return "no SUBACK";
    if (body[2] & 0x80)
        return "the broker refused the subscription";
    send_packet(fd, 0xe0, body, 0);
    return NULL;
}

static void *loader_main(void *arg)
{
    struct rtm_loader *l = arg;
    int fd = connect_retrying(l);
    if (fd < 0) {
        settle(l, RTM_LOADER_FAILED, "cannot connect");
        return NULL;
    }
    const char *why = session(l, fd);
    close(fd);
    settle(l, why ? RTM_LOADER_FAILED : RTM_LOADER_DONE, why ? why : "");
    return NULL;
}

static int split_listener(struct rtm_loader *l, const char *listener)
{
    const char *colon = strrchr(listener, ':');
    if (!colon || colon == listener || (size_t)(colon - listener) >= sizeof(l->host) ||
        strlen(colon + 1) >= sizeof(l->port))
        return -1;
    const char *host = listener;
    size_t host_len = (size_t)(colon - listener);
    if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') { /* [::1]:1883 */
        host++;
        host_len -= 2;
    }
    memcpy(l->host, host, host_len);
    l->host[host_len] = '\0';
    strcpy(l->port, colon + 1);
    return 0;
}

struct rtm_loader *rtm_loader_start(const char *listener, const char *client_id,
                                    const char *password, const char *filter, char *err,
                                    size_t err_len)
{
    struct rtm_loader *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (split_listener(l, listener) != 0 || strlen(client_id) >= sizeof(l->client_id) ||
        strlen(password) >= sizeof(l->password) || strlen(filter) >= sizeof(l->filter)) {
        snprintf(err, err_len, "bad listener or identity");
        free(l);
        return NULL;
    }
    strcpy(l->client_id, client_id);
    strcpy(l->password, password);
    strcpy(l->filter, filter);
    l->state = RTM_LOADER_RUNNING;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (pthread_create(&l->thread, NULL, loader_main, l) != 0) {
        pthread_mutex_destroy(&l->lock);
        free(l);
        snprintf(err, err_len, "cannot start a thread");
        return NULL;
    }
    return l;
}

enum rtm_loader_state rtm_loader_poll(struct rtm_loader *l, char *err, size_t err_len)
{
    pthread_mutex_lock(&l->lock);
    enum rtm_loader_state state = l->state;
    snprintf(err, err_len, "%s", l->err);
    pthread_mutex_unlock(&l->lock);
    return state;
}

void rtm_loader_stop(struct rtm_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
