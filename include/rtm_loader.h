/*
 * Reading the device registry (and the attributes) back at start-up.
 * Mosquitto 2.0 gives plugins no way to list retained messages, but it runs
 * the ACL check (access READ, with topic and payload) for every retained
 * message it hands a new subscription, before it sends the SUBACK. So a
 * thread connects to one of the broker's own plain MQTT listeners as an
 * MQTT 3.1.1 client, subscribes to one filter that covers every device and
 * attribute topic, waits for the SUBACK and leaves; the plugin's ACL
 * callback, on the broker thread, hands each retained message to the core
 * (a registration or an attribute, by its topic) and refuses its delivery.
 * This depends on no file format.
 *
 * Where: with "auto" the thread finds the broker's own listening TCP
 * sockets (its fds in /proc/self/fd matched against /proc/self/net/tcp and
 * tcp6, rtm_procnet.h) and tries each in turn, so any port, IPv6 and several
 * listeners work; a TLS or WebSockets listener gives no MQTT answer within
 * a short timeout and the next is tried. "IP:port" names one instead.
 *
 * Proof: every attempt logs in with a fresh random secret, and the plugin's
 * BASIC_AUTH callback hands every login under the loader's client id to
 * rtm_loader_login(), which records that this broker saw it. A server that
 * accepts the login without this broker having seen it is another process
 * (a decoy, another broker on the same port): the attempt fails with "is
 * not this broker", and nothing is subscribed there. The secret is void once
 * the attempt ends.
 *
 * Retries: a round in which no listener could be read fails; the thread
 * tries again after 1 s, doubling to 60 s, until it succeeds or is stopped.
 * It starts only once rtm_loader_go() says the broker's loop runs (its
 * listeners are open then). Every wait is cut into 50 ms slices that check
 * for a stop, and connects, reads and writes have deadlines, so nothing
 * hangs and rtm_loader_stop() returns within about 100 ms.
 */
#ifndef RTM_LOADER_H
#define RTM_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rtm_loader;

/* Starts the thread. `listener` is "auto" or "IP:port" (rtm_procnet.h);
 * `filter` the one subscription it makes. NULL (and `err`) on failure. */
struct rtm_loader *rtm_loader_start(const char *listener, const char *filter, char *err,
                                    size_t err_len);

/* The broker's loop runs: its listeners are open. Idempotent. */
void rtm_loader_go(struct rtm_loader *loader);

/* From the broker's BASIC_AUTH callback, for every login: is this the
 * loader's current attempt? If so, records that this broker saw it. */
bool rtm_loader_login(struct rtm_loader *loader, const char *client_id, const char *password);

enum rtm_loader_state { RTM_LOADER_RUNNING, RTM_LOADER_DONE };

struct rtm_loader_status {
    enum rtm_loader_state state;
    unsigned failures; /* rounds that read nothing back */
    int64_t retry_ms;  /* after the last failure: the wait before the next round */
    char error[768];   /* the last failure, one "address: why" per listener tried */
    char via[64];      /* when done: the listener it read through */
    char skipped[768]; /* when done: listeners tried before it, and why they failed */
};

/* How it goes. Never blocks for long (one mutex). */
void rtm_loader_poll(struct rtm_loader *loader, struct rtm_loader_status *out);

/* Stops the thread within about 100 ms and frees all. NULL is a no-op. */
void rtm_loader_stop(struct rtm_loader *loader);

#endif
