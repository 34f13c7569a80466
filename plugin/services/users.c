/*
 * Users: one record per uid the core currently needs, found by hash. A
 * record is created on first use and freed once no session, call or pending
 * presence update refers to it and its rate buckets are full again, so
 * memory follows live state and rate limits survive reconnecting.
 *
 * The user's timer (caller_grace, or the linger until its buckets are full)
 * and its device-registration bucket live in a separate extension (struct
 * rtm_user_ext), allocated when first needed and freed as soon as neither is
 * in use, so that the millions of users who are only online, call or are
 * called do not carry them.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_outbox.h"
#include "rtm_timers.h"
#include "rtm_users.h"

static bool user_eq(const struct rtm_hnode *node, const void *key)
{
    const struct rtm_user *u = rtm_container_of(node, struct rtm_user, node);
    return strcmp(u->uid, key) == 0;
}

struct rtm_user *rtm_user_find(struct rtm_core *core, const char *uid)
{
    struct rtm_hnode *n =
        rtm_hash_find(&core->users, rtm_hash_bytes(&core->users, uid, strlen(uid)), user_eq, uid);
    return n ? rtm_container_of(n, struct rtm_user, node) : NULL;
}

static struct rtm_user *user_new(struct rtm_core *core, const char *uid)
{
    size_t len = strlen(uid);
    struct rtm_user *u = rtm_pool_alloc(&core->pool, RTM_FLEX_SIZE(struct rtm_user, uid, len + 1));
    if (!u)
        return NULL;
    memcpy(u->uid, uid, len + 1);
    rtm_hash_insert(&core->users, &u->node, rtm_hash_bytes(&core->users, uid, len));
    return u;
}

/* The user's extension, created when it has none; NULL when out of memory. */
static struct rtm_user_ext *ext_get(struct rtm_core *core, struct rtm_user *user)
{
    if (!user->ext) {
        user->ext = rtm_pool_alloc(&core->pool, sizeof(*user->ext));
        if (user->ext)
            user->ext->user = user;
    }
    return user->ext;
}

/* When every bucket of the extension is full again (ms), or -1 when none
 * was drawn from. */
static int64_t buckets_full_at(const struct rtm_user_ext *ext)
{
    int64_t due = -1;
    for (size_t i = 0; i < sizeof(ext->buckets) / sizeof(ext->buckets[0]); i++) {
        int64_t at = rtm_bucket_full_at(&ext->buckets[i]);
        due = at > due ? at : due;
    }
    return due;
}

/* Frees the extension once nothing in it is in use: no timer armed and a
 * registration bucket never drawn from (or known to be full again). */
static void ext_trim(struct rtm_core *core, struct rtm_user *user)
{
    struct rtm_user_ext *ext = user->ext;
    if (ext && !rtm_timer_armed(&ext->timer) && buckets_full_at(ext) < 0) {
        rtm_pool_free(&core->pool, ext);
        user->ext = NULL;
    }
}

bool rtm_user_timer_armed(const struct rtm_user *user)
{
    return user->ext && rtm_timer_armed(&user->ext->timer);
}

bool rtm_user_arm(struct rtm_core *core, struct rtm_user *user, enum rtm_timer_kind kind,
                  int64_t due)
{
    struct rtm_user_ext *ext = ext_get(core, user);
    if (!ext)
        return false;
    ext->timer.kind = kind & 0xff;
    if (rtm_heap_arm(&core->timers, &ext->timer, due) == 0)
        return true;
    ext_trim(core, user);
    return false;
}

void rtm_user_disarm(struct rtm_core *core, struct rtm_user *user)
{
    if (!user->ext)
        return;
    rtm_timer_disarm(core, &user->ext->timer);
    ext_trim(core, user);
}

struct rtm_user *rtm_user_of_timer(struct rtm_timer *timer)
{
    return rtm_container_of(timer, struct rtm_user_ext, timer)->user;
}

struct rtm_user *rtm_user_acquire(struct rtm_core *core, const char *uid)
{
    struct rtm_user *u = rtm_user_find(core, uid);
    if (!u)
        u = user_new(core, uid);
    if (!u)
        return NULL;
    if (u->ext && u->ext->timer.kind == RTM_TIMER_USER_LINGER)
        rtm_user_disarm(core, u);
    u->refs++;
    return u;
}

static void user_free(struct rtm_core *core, struct rtm_user *user)
{
    if (user->ext) {
        rtm_timer_disarm(core, &user->ext->timer);
        rtm_pool_free(&core->pool, user->ext);
    }
    rtm_hash_remove(&core->users, &user->node);
    rtm_pool_free(&core->pool, user);
}

void rtm_user_release(struct rtm_core *core, struct rtm_user *user)
{
    if (user->refs > 0)
        user->refs--;
    rtm_user_gc(core, user);
}

void rtm_user_gc(struct rtm_core *core, struct rtm_user *user)
{
    if (user->refs != 0 || user->dirty)
        return;
    int64_t a = rtm_bucket_full_at(&user->invites);
    int64_t b = user->ext ? buckets_full_at(user->ext) : -1;
    int64_t due = a > b ? a : b;
    if (due < 0) {
        user_free(core, user);
        return;
    }
    if (rtm_user_timer_armed(user))
        return;
    if (!rtm_user_arm(core, user, RTM_TIMER_USER_LINGER, due))
        user_free(core, user); /* out of memory: forget the limits, not the memory */
}

void rtm_user_linger_done(struct rtm_core *core, struct rtm_user *user)
{
    user->invites.tat_us = 0;
    if (user->ext)
        memset(user->ext->buckets, 0, sizeof(user->ext->buckets));
    ext_trim(core, user);
    rtm_user_gc(core, user);
}

bool rtm_user_live(const struct rtm_user *user)
{
    return user->confirmed + user->unconfirmed > 0;
}

bool rtm_user_take(struct rtm_core *core, struct rtm_user *user, enum rtm_user_limit limit,
                   int64_t now)
{
    struct rtm_user_ext *ext = ext_get(core, user);
    if (!ext) {
        /* A limit that cannot be recorded is not enforced, as for a writer
         * the core holds no record of. */
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory counting the rate of %s", user->uid);
        return true;
    }
    const struct rtm_config *cfg = core->cfg;
    switch (limit) {
    case RTM_LIMIT_REGISTRATIONS:
        return rtm_bucket_take(&ext->buckets[limit], cfg->device_rate, 60000, now);
    case RTM_LIMIT_MESSAGES:
        return rtm_bucket_take(&ext->buckets[limit], cfg->message_rate, 1000, now);
    case RTM_LIMIT_ATTRS:
        return rtm_bucket_take(&ext->buckets[limit], cfg->attr_rate, 5000, now);
    case RTM_LIMIT_JOINS:
        return rtm_bucket_take(&ext->buckets[limit], cfg->join_rate, 1000, now);
    }
    return true;
}

void rtm_users_free_all(struct rtm_core *core)
{
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&core->users)) != NULL) {
        struct rtm_user *u = rtm_container_of(n, struct rtm_user, node);
        rtm_pool_free(&core->pool, u->ext);
        rtm_pool_free(&core->pool, u);
    }
}
