/*
 * The push dispatcher (see rtm_pusher.h). Two tables: jobs (one request to
 * one batch of at most 1000 tokens, found by the tag its response comes back
 * with) and pushed calls (the tokens an invitation woke, so that its
 * call_cancel push goes to the same devices). One heap holds both kinds of
 * timer: a job's next retry and a call record's expiry.
 *
 * Until the registry is ready, invitation pushes wait on a list, oldest
 * first, each with a timer at its ringing deadline (the third kind).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_hash.h"
#include "rtm_heap.h"
#include "rtm_list.h"
#include "rtm_message.h"
#include "rtm_pusher.h"

#define REMEMBER_MS        120000 /* a call record outlives the ringing deadline this long */
#define BACKOFF_BASE_MS    500
#define BACKOFF_MAX_MS     30000
#define RETRY_AFTER_MAX_MS 60000

enum { TIMER_RETRY, TIMER_FORGET, TIMER_HELD };

struct tokens {
    char **v;
    size_t n;
};

struct pushed_call {
    struct rtm_hnode node; /* by caller and id, which name an invitation */
    struct rtm_timer forget;
    struct tokens tokens;
    char caller[RTM_UID_MAX + 1];
    char id[RTM_ID_MAX + 1];
};

struct job {
    struct rtm_hnode node; /* by tag */
    struct rtm_timer retry;
    uint64_t tag;
    unsigned attempt;
    struct tokens tokens;
    struct rtm_push_copy push;
};

/* An invitation push waiting for the registry to be read back. */
struct held {
    struct rtm_hnode node;   /* rtm_pusher.held_ids, by caller and id */
    struct rtm_list link;    /* in rtm_pusher.held, oldest first */
    struct rtm_timer expire; /* at its ringing deadline */
    struct rtm_push_copy push;
};

struct rtm_pusher {
    struct rtm_pusher_env env;
    bool ready; /* the registry has been read back */
    struct rtm_list held;
    struct rtm_hash held_ids; /* the same pushes, for a call_cancel to find its invite */
    struct rtm_hash jobs;
    struct rtm_hash calls;
    struct rtm_heap timers;
    uint64_t next_tag;
    uint64_t rng;
    struct rtm_pusher_stats st;
};

static const char *kind_name(enum rtm_push_kind kind)
{
    return kind == RTM_PUSH_CALL_INVITE ? "call_invite" : "call_cancel";
}

static void plog(struct rtm_pusher *p, enum rtm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void plog(struct rtm_pusher *p, enum rtm_log_level level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    p->env.sink->log(p->env.sink->ud, level, line);
}

static void tokens_free(struct tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* Copies src[from .. from+count) into `out`; -1 when out of memory. */
static int tokens_copy(const char *const *src, size_t count, struct tokens *out)
{
    out->v = calloc(count ? count : 1, sizeof(*out->v));
    out->n = 0;
    if (!out->v)
        return -1;
    for (; out->n < count; out->n++) {
        if (!(out->v[out->n] = strdup(src[out->n]))) {
            tokens_free(out);
            return -1;
        }
    }
    return 0;
}

/* --- pushed calls -------------------------------------------------------- */

struct call_key {
    const char *caller;
    const char *id;
};

static bool call_eq(const struct rtm_hnode *node, const void *key)
{
    const struct pushed_call *pc = rtm_container_of(node, struct pushed_call, node);
    const struct call_key *k = key;
    return strcmp(pc->id, k->id) == 0 && strcmp(pc->caller, k->caller) == 0;
}

static struct pushed_call *call_find(struct rtm_pusher *p, const char *caller, const char *id)
{
    struct call_key key = {caller, id};
    struct rtm_hnode *n =
        rtm_hash_find(&p->calls, rtm_hash_pair(&p->calls, caller, id), call_eq, &key);
    return n ? rtm_container_of(n, struct pushed_call, node) : NULL;
}

static void call_free(struct rtm_pusher *p, struct pushed_call *pc)
{
    rtm_hash_remove(&p->calls, &pc->node);
    rtm_heap_disarm(&p->timers, &pc->forget);
    tokens_free(&pc->tokens);
    free(pc);
}

/* `src` (NULL: empty) into `dst` of `size` > 0 bytes (an array's sizeof),
 * cut to fit. A plain copy: snprintf("%s") cost ten times as much on this
 * path (bench/profile.sh). */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Remembers which tokens `push` woke, replacing an older record. */
static void call_remember(struct rtm_pusher *p, const struct rtm_push *push,
                          const struct tokens *tokens)
{
    struct pushed_call *old = call_find(p, push->caller, push->call_id);
    if (old)
        call_free(p, old);
    struct pushed_call *pc = calloc(1, sizeof(*pc));
    if (!pc || tokens_copy((const char *const *)tokens->v, tokens->n, &pc->tokens) != 0) {
        free(pc);
        plog(p, RTM_LOG_ERR, "rtm: out of memory remembering the push of call %s", push->call_id);
        return;
    }
    copy_text(pc->caller, sizeof(pc->caller), push->caller);
    copy_text(pc->id, sizeof(pc->id), push->call_id);
    pc->forget.kind = TIMER_FORGET;
    rtm_hash_insert(&p->calls, &pc->node, rtm_hash_pair(&p->calls, pc->caller, pc->id));
    int64_t until = push->expires_at > push->now_ms ? push->expires_at : push->now_ms;
    if (rtm_heap_arm(&p->timers, &pc->forget, until + REMEMBER_MS) != 0)
        call_free(p, pc);
}

/* --- jobs ------------------------------------------------------------------ */

static bool job_eq(const struct rtm_hnode *node, const void *key)
{
    return rtm_container_of(node, struct job, node)->tag == *(const uint64_t *)key;
}

static struct job *job_find(struct rtm_pusher *p, uint64_t tag)
{
    struct rtm_hnode *n =
        rtm_hash_find(&p->jobs, rtm_hash_ptr((void *)(uintptr_t)tag), job_eq, &tag);
    return n ? rtm_container_of(n, struct job, node) : NULL;
}

static void job_free(struct rtm_pusher *p, struct job *job)
{
    rtm_hash_remove(&p->jobs, &job->node);
    rtm_heap_disarm(&p->timers, &job->retry);
    tokens_free(&job->tokens);
    free(job);
}

/* --- push copies ---------------------------------------------------------- */

void rtm_push_copy_set(struct rtm_push_copy *c, const struct rtm_push *push)
{
    c->kind = push->kind;
    c->expires_at = push->expires_at;
    copy_text(c->call_id, sizeof(c->call_id), push->call_id);
    copy_text(c->caller, sizeof(c->caller), push->caller);
    copy_text(c->callee, sizeof(c->callee), push->callee);
    copy_text(c->channel, sizeof(c->channel), push->channel);
    copy_text(c->why, sizeof(c->why), push->why);
    copy_text(c->reason, sizeof(c->reason), push->reason);
}

struct rtm_push rtm_push_copy_view(const struct rtm_push_copy *c, int64_t now_ms)
{
    struct rtm_push push = {
        .kind = c->kind,
        .call_id = c->call_id,
        .caller = c->caller,
        .callee = c->callee,
        .channel = c->channel,
        .expires_at = c->expires_at,
        .why = c->why,
        .reason = c->reason[0] ? c->reason : NULL,
        .now_ms = now_ms,
    };
    return push;
}

static struct job *job_new(struct rtm_pusher *p, const struct rtm_push *push,
                           const struct tokens *all, size_t from, size_t count)
{
    struct job *job = calloc(1, sizeof(*job));
    if (!job || tokens_copy((const char *const *)all->v + from, count, &job->tokens) != 0) {
        free(job);
        return NULL;
    }
    job->tag = ++p->next_tag;
    job->retry.kind = TIMER_RETRY;
    rtm_push_copy_set(&job->push, push);
    rtm_hash_insert(&p->jobs, &job->node, rtm_hash_ptr((void *)(uintptr_t)job->tag));
    return job;
}

void rtm_pusher_drop(struct rtm_pusher *p, const struct rtm_push *push)
{
    plog(p, RTM_LOG_WARNING, "rtm: push %s %s to %s dropped: the push queue is full",
         kind_name(push->kind), push->call_id, push->callee);
    p->st.dropped++;
}

/* Builds the job's request (time_to_live as of `now`) and hands it over. */
static void job_send(struct rtm_pusher *p, struct job *job, int64_t now)
{
    struct rtm_push push = rtm_push_copy_view(&job->push, now);
    struct rtm_push_request req;
    memset(&req, 0, sizeof(req));
    if (p->env.provider->build(p->env.settings, &push, (const char *const *)job->tokens.v,
                               job->tokens.n, now, &req) != 0) {
        plog(p, RTM_LOG_ERR, "rtm: out of memory building the push of call %s", job->push.call_id);
        p->st.failed++;
        job_free(p, job);
        return;
    }
    if (p->env.submit(p->env.ud, job->tag, &req) != 0) {
        rtm_push_request_free(&req);
        rtm_pusher_drop(p, &push);
        job_free(p, job);
        return;
    }
    p->st.sent++;
}

/* --- waiting for the registry ------------------------------------------- */

static void held_free(struct rtm_pusher *p, struct held *h)
{
    rtm_list_remove(&h->link);
    rtm_hash_remove(&p->held_ids, &h->node);
    rtm_heap_disarm(&p->timers, &h->expire);
    free(h);
}

static bool held_eq(const struct rtm_hnode *node, const void *key)
{
    const struct held *h = rtm_container_of(node, struct held, node);
    const struct call_key *k = key;
    return strcmp(h->push.call_id, k->id) == 0 && strcmp(h->push.caller, k->caller) == 0;
}

/* By hash: a burst of cancels while the registry loads must not scan a
 * queue of up to push_queue_max pushes each on the broker thread. */
static struct held *held_find(struct rtm_pusher *p, const char *caller, const char *call_id)
{
    struct call_key key = {caller, call_id};
    struct rtm_hnode *n =
        rtm_hash_find(&p->held_ids, rtm_hash_pair(&p->held_ids, caller, call_id), held_eq, &key);
    return n ? rtm_container_of(n, struct held, node) : NULL;
}

static void held_drop(struct rtm_pusher *p, struct held *h, const char *what)
{
    plog(p, RTM_LOG_INFO,
         "rtm: push call_invite %s to %s (%s) not sent: %s before the device registry was read "
         "back",
         h->push.call_id, h->push.callee, h->push.why, what);
    held_free(p, h);
}

/* Keeps an invitation push while the registry is not ready; a call_cancel
 * whose invitation push is still kept ends both (nothing rang). True when
 * `push` was taken care of here. */
static bool hold(struct rtm_pusher *p, const struct rtm_push *push)
{
    if (push->kind == RTM_PUSH_CALL_CANCEL) {
        struct held *h = held_find(p, push->caller, push->call_id);
        if (h)
            held_drop(p, h, "the call ended, so neither is its call_cancel,");
        return h != NULL;
    }
    if (p->ready)
        return false;
    if (p->held_ids.count + p->jobs.count >= p->env.cfg->push_queue_max) {
        rtm_pusher_drop(p, push);
        return true;
    }
    struct held *h = calloc(1, sizeof(*h));
    if (h) {
        rtm_push_copy_set(&h->push, push);
        h->expire.kind = TIMER_HELD;
    }
    if (!h || rtm_heap_arm(&p->timers, &h->expire, push->expires_at) != 0) {
        free(h);
        plog(p, RTM_LOG_ERR, "rtm: out of memory holding the push of call %s", push->call_id);
        return true;
    }
    rtm_list_add_tail(&p->held, &h->link);
    rtm_hash_insert(&p->held_ids, &h->node,
                    rtm_hash_pair(&p->held_ids, push->caller, push->call_id));
    plog(p, RTM_LOG_INFO,
         "rtm: push call_invite %s to %s (%s): waiting for the device registry to be read back",
         push->call_id, push->callee, push->why ? push->why : "");
    return true;
}

void rtm_pusher_registry_ready(struct rtm_pusher *p, int64_t now)
{
    p->ready = true;
    while (p->held_ids.count) {
        struct held *h = rtm_container_of(p->held.next, struct held, link);
        if (!p->env.call_pending(p->env.ud, h->push.caller, h->push.call_id)) {
            held_drop(p, h, "the call ended");
            continue;
        }
        struct rtm_push_copy copy = h->push;
        held_free(p, h);
        struct rtm_push push = rtm_push_copy_view(&copy, now);
        rtm_pusher_on_push(p, &push);
    }
}

/* --- pushing ------------------------------------------------------------- */

/* The callee's tokens, and their device names for the log line. */
static int collect(struct rtm_pusher *p, const char *uid, struct tokens *out, char *names,
                   size_t names_len)
{
    size_t max = p->env.cfg->max_devices;
    struct rtm_device_entry *entries = calloc(max ? max : 1, sizeof(*entries));
    const char **tokens = calloc(max ? max : 1, sizeof(*tokens));
    int rc = -1;
    if (entries && tokens) {
        size_t n = rtm_registry_devices(p->env.registry, uid, entries, max);
        n = n < max ? n : max;
        names[0] = '\0';
        for (size_t i = 0, used = 0; i < n; i++) {
            tokens[i] = entries[i].token;
            if (used < names_len)
                used += (size_t)snprintf(names + used, names_len - used, "%s%s", i ? "," : "",
                                         entries[i].device);
        }
        rc = tokens_copy(tokens, n, out);
    }
    free(entries);
    free(tokens);
    return rc;
}

static void dry_run(struct rtm_pusher *p, const struct rtm_push *push, const struct tokens *t,
                    const char *names)
{
    plog(p, RTM_LOG_INFO,
         "rtm: push (dry run) %s %s from %s to %s (%s): would wake %zu device(s)%s%s",
         kind_name(push->kind), push->call_id, push->caller, push->callee,
         push->why ? push->why : "", t->n, names[0] ? ": " : "", names);
}

/* The tokens `push` goes to: the callee's devices for an invite, the ones
 * the invite woke for a cancel. False when there are none. */
static bool targets(struct rtm_pusher *p, const struct rtm_push *push, struct tokens *out,
                    char *names, size_t names_len)
{
    names[0] = '\0';
    if (push->kind == RTM_PUSH_CALL_CANCEL) {
        struct pushed_call *pc = call_find(p, push->caller, push->call_id);
        if (!pc)
            return false;
        *out = pc->tokens; /* the cancel is the call's last push */
        pc->tokens.v = NULL;
        pc->tokens.n = 0;
        call_free(p, pc);
        return out->n > 0;
    }
    if (collect(p, push->callee, out, names, names_len) != 0) {
        plog(p, RTM_LOG_ERR, "rtm: out of memory looking up the devices of %s", push->callee);
        return false;
    }
    if (out->n == 0) {
        plog(p, RTM_LOG_INFO, "rtm: push %s %s to %s (%s): no registered device",
             kind_name(push->kind), push->call_id, push->callee, push->why ? push->why : "");
        tokens_free(out);
        return false;
    }
    call_remember(p, push, out);
    return true;
}

void rtm_pusher_on_push(void *ud, const struct rtm_push *push)
{
    struct rtm_pusher *p = ud;
    struct tokens all = {NULL, 0};
    char names[512];
    if (hold(p, push) || !targets(p, push, &all, names, sizeof(names)))
        return;
    if (!p->env.submit) {
        dry_run(p, push, &all, names);
    } else {
        for (size_t from = 0; from < all.n; from += RTM_PUSH_BATCH_MAX) {
            size_t count = all.n - from < RTM_PUSH_BATCH_MAX ? all.n - from : RTM_PUSH_BATCH_MAX;
            struct job *job = job_new(p, push, &all, from, count);
            if (job)
                job_send(p, job, push->now_ms);
            else
                plog(p, RTM_LOG_ERR, "rtm: out of memory pushing call %s", push->call_id);
        }
    }
    tokens_free(&all);
}

/* --- results ------------------------------------------------------------- */

static uint64_t next_random(struct rtm_pusher *p)
{
    p->rng ^= p->rng << 13; /* xorshift64 */
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return p->rng;
}

/* Exponential backoff with jitter, unless the provider said when. */
static int64_t retry_delay(struct rtm_pusher *p, unsigned attempt, int64_t retry_after_ms)
{
    if (retry_after_ms >= 0)
        return retry_after_ms < RETRY_AFTER_MAX_MS ? retry_after_ms : RETRY_AFTER_MAX_MS;
    int64_t cap = BACKOFF_BASE_MS;
    for (unsigned i = 0; i < attempt && cap < BACKOFF_MAX_MS; i++)
        cap *= 2;
    cap = cap < BACKOFF_MAX_MS ? cap : BACKOFF_MAX_MS;
    return cap / 2 + (int64_t)(next_random(p) % (uint64_t)(cap / 2 + 1));
}

/* Schedules another attempt if the call is still worth ringing. */
static bool retry_later(struct rtm_pusher *p, struct job *job, const struct rtm_push_verdict *v,
                        int64_t now)
{
    if (job->push.kind != RTM_PUSH_CALL_INVITE || job->attempt + 1 >= RTM_PUSH_MAX_ATTEMPTS ||
        !p->env.call_pending(p->env.ud, job->push.caller, job->push.call_id))
        return false;
    int64_t due = now + retry_delay(p, job->attempt, v->retry_after_ms);
    if (due >= job->push.expires_at || rtm_heap_arm(&p->timers, &job->retry, due) != 0)
        return false;
    job->attempt++;
    p->st.retried++;
    plog(p, RTM_LOG_NOTICE, "rtm: push %s %s to %s: %s; retry %u in %lld ms",
         kind_name(job->push.kind), job->push.call_id, job->push.callee, v->message, job->attempt,
         (long long)(due - now));
    return true;
}

static void tell_caller(struct rtm_pusher *p, const struct job *job, int64_t now)
{
    char topic[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    size_t len;
    char *json = rtm_pushed_json(job->push.call_id, job->push.caller, job->push.callee,
                                 job->tokens.n, now, &len);
    snprintf(topic, sizeof(topic), "%s/u/%s/call", p->env.cfg->topic_prefix, job->push.caller);
    if (json) {
        struct rtm_publish msg = {NULL, topic, json, len, 1, false};
        p->env.sink->publish(p->env.sink->ud, &msg);
    }
    free(json);
}

/* The provider knows none of the job's tokens: forget those registrations
 * and clear their retained messages, the registry's store. */
static void drop_tokens(struct rtm_pusher *p, const struct job *job)
{
    for (size_t i = 0; i < job->tokens.n; i++) {
        struct rtm_device_ref ref;
        if (!rtm_registry_remove_token(p->env.registry, job->tokens.v[i], &ref))
            continue;
        char topic[RTM_PREFIX_MAX + RTM_UID_MAX + RTM_ID_MAX + 24];
        snprintf(topic, sizeof(topic), "%s/u/%s/devices/%s", p->env.cfg->topic_prefix, ref.uid,
                 ref.device);
        struct rtm_publish msg = {NULL, topic, "", 0, 1, true};
        p->env.sink->publish(p->env.sink->ud, &msg);
        p->st.tokens_removed++;
        plog(p, RTM_LOG_NOTICE, "rtm: removed device %s of %s: the push provider does not know it",
             ref.device, ref.uid);
    }
}

void rtm_pusher_result(struct rtm_pusher *p, uint64_t tag, const struct rtm_push_response *response,
                       int64_t now)
{
    struct job *job = job_find(p, tag);
    if (!job)
        return;
    struct rtm_push_verdict v;
    p->env.provider->classify(response, &v);
    switch (v.outcome) {
    case RTM_PUSH_OK:
        p->st.ok++;
        plog(p, RTM_LOG_INFO, "rtm: push %s %s to %s (%s): %zu device(s) ok",
             kind_name(job->push.kind), job->push.call_id, job->push.callee, job->push.why,
             job->tokens.n);
        if (job->push.kind == RTM_PUSH_CALL_INVITE)
            tell_caller(p, job, now);
        break;
    case RTM_PUSH_RETRY:
        if (retry_later(p, job, &v, now))
            return;
        p->st.failed++;
        plog(p, RTM_LOG_WARNING, "rtm: push %s %s to %s: %s; giving up", kind_name(job->push.kind),
             job->push.call_id, job->push.callee, v.message);
        break;
    case RTM_PUSH_INVALID_TOKENS:
        p->st.failed++;
        drop_tokens(p, job);
        break;
    case RTM_PUSH_CONFIG_ERROR:
        p->st.failed++;
        plog(p, RTM_LOG_ERR,
             "rtm: push %s %s refused: %s: check plugin_opt_jpush_app_key and the master secret",
             kind_name(job->push.kind), job->push.call_id, v.message);
        break;
    case RTM_PUSH_REJECTED:
        p->st.failed++;
        plog(p, RTM_LOG_WARNING, "rtm: push %s %s to %s refused: %s", kind_name(job->push.kind),
             job->push.call_id, job->push.callee, v.message);
        break;
    }
    job_free(p, job);
}

/* A retry is sent only if its call is still pending: a call canceled
 * during the backoff must not ring again. */
static void retry_now(struct rtm_pusher *p, struct job *job, int64_t now)
{
    if (job->push.kind == RTM_PUSH_CALL_INVITE &&
        !p->env.call_pending(p->env.ud, job->push.caller, job->push.call_id)) {
        plog(p, RTM_LOG_INFO, "rtm: push %s %s to %s: call ended; retry dropped",
             kind_name(job->push.kind), job->push.call_id, job->push.callee);
        job_free(p, job);
        return;
    }
    job_send(p, job, now);
}

void rtm_pusher_tick(struct rtm_pusher *p, int64_t now)
{
    struct rtm_timer *t;
    while ((t = rtm_heap_pop_due(&p->timers, now)) != NULL) {
        if (t->kind == TIMER_RETRY)
            retry_now(p, rtm_container_of(t, struct job, retry), now);
        else if (t->kind == TIMER_HELD)
            held_drop(p, rtm_container_of(t, struct held, expire), "its ringing deadline passed");
        else
            call_free(p, rtm_container_of(t, struct pushed_call, forget));
    }
}

/* --- lifetime ------------------------------------------------------------ */

struct rtm_pusher *rtm_pusher_new(const struct rtm_pusher_env *env)
{
    struct rtm_pusher *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->env = *env;
    p->ready = !env->registry_loading;
    rtm_list_init(&p->held);
    p->rng = env->seed ? env->seed : 0x9e3779b97f4a7c15ULL;
    rtm_heap_init(&p->timers);
    if (rtm_hash_init(&p->jobs, 64, NULL) != 0 ||
        rtm_hash_init(&p->calls, 64, &env->hash_key) != 0 ||
        rtm_hash_init(&p->held_ids, 64, &env->hash_key) != 0) {
        rtm_hash_fini(&p->jobs);
        rtm_hash_fini(&p->calls);
        free(p);
        return NULL;
    }
    return p;
}

void rtm_pusher_free(struct rtm_pusher *p)
{
    if (!p)
        return;
    rtm_heap_fini(&p->timers);
    while (!rtm_list_empty(&p->held)) {
        struct held *h = rtm_container_of(p->held.next, struct held, link);
        rtm_list_remove(&h->link);
        free(h);
    }
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&p->jobs)) != NULL) {
        struct job *job = rtm_container_of(n, struct job, node);
        tokens_free(&job->tokens);
        free(job);
    }
    while ((n = rtm_hash_pop(&p->calls)) != NULL) {
        struct pushed_call *pc = rtm_container_of(n, struct pushed_call, node);
        tokens_free(&pc->tokens);
        free(pc);
    }
    rtm_hash_fini(&p->jobs);
    rtm_hash_fini(&p->calls);
    rtm_hash_fini(&p->held_ids);
    free(p);
}

void rtm_pusher_stats(const struct rtm_pusher *p, struct rtm_pusher_stats *out)
{
    *out = p->st;
    out->jobs = p->jobs.count;
    out->calls = p->calls.count;
    out->held = p->held_ids.count;
}
