/*
 * Which connection holds each client id, and the messages addressed to one
 * connection.
 *
 * Mosquitto delivers a plugin's message for one client by client id, at the
 * start of the next loop iteration. A connection that takes that client id
 * over in the meantime (a takeover logs the new connection in before the
 * old one is reported gone) would receive what was meant for the old one: an
 * `error`, a pending invite. So messages for one connection are held here
 * and handed to the broker on TICK (the end of Mosquitto 2.0's loop
 * iteration, after every login of the iteration), each only if its
 * connection still holds its client id. Mosquitto 2.1 runs TICK before the
 * network events of a pass instead, so there a takeover in the same pass as
 * the delivery still gets the message; with `auth token` the new connection
 * is then one of the same uid (its client id must be the uid's own).
 *
 * Client ids are kept as keyed SipHash digests, not strings: 64 bits whose
 * key nobody knows cannot be made to collide. Pure: no Mosquitto calls; the
 * adapter copies each client id when it posts a message, so nothing here
 * ever follows a handle.
 */
#ifndef RTM_CONNS_H
#define RTM_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtm_core.h"
#include "rtm_hash.h"

struct rtm_conns;

/* NULL when out of memory. `key` keys the client id digests. */
struct rtm_conns *rtm_conns_new(const struct rtm_hash_key *key);

/* Frees everything; held messages are dropped. */
void rtm_conns_free(struct rtm_conns *c);

/* `handle` logged in with `client_id`: it holds the id from now on, whoever
 * held it before. -1 when out of memory (nothing changed). */
int rtm_conns_login(struct rtm_conns *c, const void *handle, const char *client_id);

/* `handle` is gone: it holds its client id no more (a newer connection
 * that took the id over keeps it). */
void rtm_conns_logout(struct rtm_conns *c, const void *handle);

/* True when a connection other than `handle` holds `client_id`. */
bool rtm_conns_superseded(const struct rtm_conns *c, const void *handle, const char *client_id);

/* Holds a copy of `msg` (whose handle names its connection) for `client_id`
 * until rtm_conns_flush(). -1 when out of memory (nothing held). */
int rtm_conns_post(struct rtm_conns *c, const char *client_id, const struct rtm_publish *msg);

/* Sends every held message whose connection still holds its client id (or
 * whose id nobody has logged in with since), oldest first, through
 * `send(ud, client_id, msg)`, and drops the others. Returns how many were
 * dropped. */
size_t rtm_conns_flush(struct rtm_conns *c,
                       void (*send)(void *ud, const char *client_id, const struct rtm_publish *msg),
                       void *ud);

/* Connections holding a client id, and messages held. */
size_t rtm_conns_count(const struct rtm_conns *c);
size_t rtm_conns_held(const struct rtm_conns *c);

#endif
