/*
 * The push dispatcher. The core says when a call needs a push; the
 * dispatcher looks up the callee's devices in the registry, has the provider
 * build one request per batch of tokens, hands them to a sender (the HTTP
 * worker in the plugin, a recorder in tests), and acts on each verdict:
 * tell the caller (`pushed`), retry with backoff while the call is pending,
 * drop registrations the provider does not know, or log a configuration
 * error. It runs on the broker thread, reads no clock and starts no thread.
 *
 * While the device registry is still being read back at start-up, an
 * invitation push cannot know its devices: it waits here, in order, until
 * rtm_pusher_registry_ready(), and goes out then if its invitation is still
 * pending. One that ends first (its call_cancel arrives, the invitation is
 * no longer pending, or its ringing deadline passes) is dropped with one
 * log line, and its call_cancel with it: nothing ever rang.
 */
#ifndef RTM_PUSHER_H
#define RTM_PUSHER_H

#include <stdbool.h>
#include <stdint.h>

#include "rtm_config.h"
#include "rtm_core.h"
#include "rtm_push.h"
#include "rtm_registry.h"

#define RTM_PUSH_MAX_ATTEMPTS 6

struct rtm_pusher_env {
    const struct rtm_config *cfg;
    const struct rtm_sink *sink; /* publishes `pushed` and cleared registrations; logs */
    struct rtm_registry *registry;
    const struct rtm_push_provider *provider;
    const struct rtm_push_settings *settings;
    /* Sends `req` (ownership moves on 0); -1 when the sender is full. NULL
     * means dry run: every push is logged, nothing is sent. */
    int (*submit)(void *ud, uint64_t tag, struct rtm_push_request *req);
    /* Is the invitation (caller, id) still pending, so that a retry is worth it? */
    bool (*call_pending)(void *ud, const char *caller, const char *call_id);
    void *ud;
    uint64_t seed;                /* for retry jitter */
    bool registry_loading;        /* invitation pushes wait for rtm_pusher_registry_ready() */
    struct rtm_hash_key hash_key; /* for invitations (caller and id) */
};

/* A push's fields held by value, for a push that outlives the core's call
 * to the push hook: a job awaiting its answer or retry, or a push waiting
 * for the HTTP worker. Longer texts are cut to fit (the core's are not). */
struct rtm_push_copy {
    enum rtm_push_kind kind;
    int64_t expires_at;
    char call_id[RTM_ID_MAX + 1];
    char caller[RTM_UID_MAX + 1];
    char callee[RTM_UID_MAX + 1];
    char channel[RTM_ID_MAX + 1]; /* "" when none */
    char why[48];
    char reason[24]; /* "" when none (a call_invite) */
};

void rtm_push_copy_set(struct rtm_push_copy *c, const struct rtm_push *push);
/* The push `c` holds, pointing into it, as decided at `now_ms`. */
struct rtm_push rtm_push_copy_view(const struct rtm_push_copy *c, int64_t now_ms);

struct rtm_pusher_stats {
    size_t jobs;   /* requests in flight or waiting to be retried */
    size_t calls;  /* calls whose pushed devices are remembered for call_cancel */
    uint64_t sent; /* requests handed to the sender */
    uint64_t ok;
    uint64_t retried;
    uint64_t failed;  /* given up, refused or misconfigured */
    uint64_t dropped; /* the sender was full */
    uint64_t tokens_removed;
    size_t held; /* invitation pushes waiting for the registry */
};

struct rtm_pusher;

struct rtm_pusher *rtm_pusher_new(const struct rtm_pusher_env *env);
void rtm_pusher_free(struct rtm_pusher *pusher);

/* The core's push hook (rtm_push_fn): `ud` is the pusher. */
void rtm_pusher_on_push(void *ud, const struct rtm_push *push);
/* `push` is not sent because the push queue is full: one log line, and
 * counted in `dropped`. For the pusher's own requests and for pushes its
 * caller refuses before they reach it. */
void rtm_pusher_drop(struct rtm_pusher *pusher, const struct rtm_push *push);

/* A response for the request submitted with `tag`. */
void rtm_pusher_result(struct rtm_pusher *pusher, uint64_t tag,
                       const struct rtm_push_response *response, int64_t now_ms);

/* The registry has been read back: every held push whose invitation is
 * still pending goes out now (time_to_live as of `now_ms`), oldest first;
 * later pushes no longer wait. */
void rtm_pusher_registry_ready(struct rtm_pusher *pusher, int64_t now_ms);

/* Sends the retries that are due, and drops held pushes whose ringing
 * deadline has passed. */
void rtm_pusher_tick(struct rtm_pusher *pusher, int64_t now_ms);

void rtm_pusher_stats(const struct rtm_pusher *pusher, struct rtm_pusher_stats *out);

#endif
