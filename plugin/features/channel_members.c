/*
 * The channels feature's records (channel_members.h): the channel table,
 * the sorted member arrays and the sessions' membership arrays.
 *
 * Memory per membership is what this file is built around. At scale a
 * membership costs 8 bytes in its session's array and, for a uid in one
 * session, a 16-byte member entry in an array at least half full: 24 to 40
 * bytes, and never a record of its own. Arrays of up to RTM_POOL_MAX bytes
 * come from the core's pool (exact 16-byte size classes, no malloc header);
 * larger ones from malloc. A session's array grows by 16 bytes at a time
 * (it holds at most max_channels pointers); a channel's array doubles and
 * halves, so joins and leaves cost amortized O(1) allocation plus the
 * move of the entries after the uid's place.
 *
 * Every failure leaves both sides as they were: a membership is recorded
 * on both or on neither.
 */
#include <stdlib.h>
#include <string.h>

#include "channel_members.h"
#include "rtm_timers.h"

/* A session's memberships: `n` channel pointers of room for `cap`. */
struct session_chans {
    uint32_t n;
    uint32_t cap;
    struct rtm_channel *v[];
};

/* --- storage: the pool up to its largest class, malloc beyond ------------- */

static void *store_alloc(struct rtm_core *core, size_t size)
{
    return size <= RTM_POOL_MAX ? rtm_pool_alloc(&core->pool, size) : malloc(size);
}

static void store_free(struct rtm_core *core, void *p, size_t size)
{
    if (size <= RTM_POOL_MAX)
        rtm_pool_free(&core->pool, p);
    else
        free(p);
}

/* Moves `p` (`old` bytes, NULL when 0) to a block of `size` bytes, keeping
 * what fits; NULL when out of memory, and `p` is then untouched. */
static void *store_resize(struct rtm_core *core, void *p, size_t old, size_t size)
{
    if (old > RTM_POOL_MAX && size > RTM_POOL_MAX)
        return realloc(p, size);
    void *q = store_alloc(core, size);
    if (!q)
        return NULL;
    if (p) {
        memcpy(q, p, old < size ? old : size);
        store_free(core, p, old);
    }
    return q;
}

/* --- the channel table ------------------------------------------------------ */

struct name_key {
    const char *name;
    size_t len;
};

static bool channel_eq(const struct rtm_hnode *node, const void *key)
{
    const struct rtm_channel *ch = rtm_container_of(node, struct rtm_channel, node);
    const struct name_key *k = key;
    return ch->name_len == k->len && memcmp(ch->name, k->name, k->len) == 0;
}

int rtm_chan_init(struct rtm_core *core)
{
    struct rtm_channels *chs = calloc(1, sizeof(*chs));
    if (!chs)
        return -1;
    if (rtm_hash_init(&chs->table, 64, &core->hash_key) != 0) {
        free(chs);
        return -1;
    }
    core->channels = chs;
    return 0;
}

struct rtm_channel *rtm_chan_find(struct rtm_core *core, const char *name, size_t len)
{
    struct rtm_channels *chs = core->channels;
    struct rtm_channel *last = chs->last;
    if (last && last->name_len == len && memcmp(last->name, name, len) == 0)
        return last;
    struct name_key key = {name, len};
    struct rtm_hnode *n =
        rtm_hash_find(&chs->table, rtm_hash_bytes(&chs->table, name, len), channel_eq, &key);
    if (!n)
        return NULL;
    chs->last = rtm_container_of(n, struct rtm_channel, node);
    return chs->last;
}

struct rtm_channel *rtm_chan_new(struct rtm_core *core, const char *name, size_t len)
{
    struct rtm_channels *chs = core->channels;
    struct rtm_channel *ch =
        rtm_pool_alloc(&core->pool, RTM_FLEX_SIZE(struct rtm_channel, name, len + 1));
    if (!ch)
        return NULL;
    memcpy(ch->name, name, len);
    ch->name[len] = '\0';
    ch->name_len = (uint8_t)len;
    ch->timer.kind = RTM_TIMER_CHANNEL;
    rtm_hash_insert(&chs->table, &ch->node, rtm_hash_bytes(&chs->table, name, len));
    return ch;
}

static void channel_release(struct rtm_core *core, struct rtm_channel *ch)
{
    store_free(core, ch->members, (size_t)ch->cap * sizeof(*ch->members));
    rtm_pool_free(&core->pool, ch);
}

void rtm_chan_free(struct rtm_core *core, struct rtm_channel *ch)
{
    struct rtm_channels *chs = core->channels;
    if (chs->last == ch)
        chs->last = NULL;
    rtm_timer_disarm(core, &ch->timer);
    rtm_hash_remove(&chs->table, &ch->node);
    channel_release(core, ch);
}

/* --- a session's memberships -------------------------------------------------- */

static struct session_chans *chans_of(const struct rtm_session *session)
{
    return session->channels;
}

static size_t chans_size(uint32_t cap)
{
    return sizeof(struct session_chans) + (size_t)cap * sizeof(struct rtm_channel *);
}

bool rtm_chan_has(const struct rtm_session *session, const struct rtm_channel *ch)
{
    const struct session_chans *sc = chans_of(session);
    for (uint32_t i = 0; sc && i < sc->n; i++) {
        if (sc->v[i] == ch)
            return true;
    }
    return false;
}

size_t rtm_chan_joined(const struct rtm_session *session)
{
    const struct session_chans *sc = chans_of(session);
    return sc ? sc->n : 0;
}

struct rtm_channel *rtm_chan_any(const struct rtm_session *session)
{
    const struct session_chans *sc = chans_of(session);
    return sc && sc->n ? sc->v[sc->n - 1] : NULL;
}

/* Room for one more: the header and an odd number of pointers fill a
 * 16-byte size class exactly, so the array grows by two slots (one class)
 * at a time. */
static int chans_reserve(struct rtm_core *core, struct rtm_session *session)
{
    struct session_chans *sc = chans_of(session);
    if (sc && sc->n < sc->cap)
        return 0;
    uint32_t cap = sc ? sc->cap + 2 : 1;
    struct session_chans *grown =
        store_resize(core, sc, sc ? chans_size(sc->cap) : 0, chans_size(cap));
    if (!grown)
        return -1;
    if (!sc)
        grown->n = 0;
    grown->cap = cap;
    session->channels = grown;
    return 0;
}

/* Drops `ch` from the session's array (order does not matter); frees the
 * array when it empties and gives back room when it is less than half used. */
static void chans_remove(struct rtm_core *core, struct rtm_session *session,
                         const struct rtm_channel *ch)
{
    struct session_chans *sc = chans_of(session);
    for (uint32_t i = 0; i < sc->n; i++) {
        if (sc->v[i] == ch) {
            sc->v[i] = sc->v[--sc->n];
            break;
        }
    }
    if (sc->n == 0) {
        store_free(core, sc, chans_size(sc->cap));
        session->channels = NULL;
    } else if (sc->cap > 2 * sc->n + 1) {
        uint32_t cap = sc->n | 1;
        struct session_chans *small = store_resize(core, sc, chans_size(sc->cap), chans_size(cap));
        if (small) { /* out of memory, the larger array is kept */
            small->cap = cap;
            session->channels = small;
        }
    }
}

/* --- a channel's members ---------------------------------------------------- */

/* The index of `uid` in the sorted member array, or where it would go;
 * `*found` says which. */
static uint32_t member_pos(const struct rtm_channel *ch, const char *uid, bool *found)
{
    uint32_t lo = 0, hi = ch->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ch->members[mid].user->uid, uid);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static int members_resize(struct rtm_core *core, struct rtm_channel *ch, uint32_t cap)
{
    size_t unit = sizeof(*ch->members);
    struct rtm_channel_member *m;
    if (cap == 0) {
        store_free(core, ch->members, (size_t)ch->cap * unit);
        m = NULL;
    } else {
        m = store_resize(core, ch->members, (size_t)ch->cap * unit, (size_t)cap * unit);
        if (!m)
            return -1;
    }
    ch->members = m;
    ch->cap = cap;
    return 0;
}

static int member_add(struct rtm_core *core, struct rtm_channel *ch, struct rtm_user *user,
                      bool *first)
{
    bool found;
    uint32_t i = member_pos(ch, user->uid, &found);
    *first = !found;
    if (found) {
        ch->members[i].sessions++;
        return 0;
    }
    if (ch->count == ch->cap && members_resize(core, ch, ch->cap ? 2 * ch->cap : 1) != 0)
        return -1;
    memmove(&ch->members[i + 1], &ch->members[i], (ch->count - i) * sizeof(*ch->members));
    ch->members[i] = (struct rtm_channel_member){user, 1};
    ch->count++;
    return 0;
}

/* True when the uid's last member session left. */
static bool member_remove(struct rtm_core *core, struct rtm_channel *ch, struct rtm_user *user)
{
    bool found;
    uint32_t i = member_pos(ch, user->uid, &found);
    if (!found || --ch->members[i].sessions > 0)
        return false;
    ch->count--;
    memmove(&ch->members[i], &ch->members[i + 1], (ch->count - i) * sizeof(*ch->members));
    /* Halves at a quarter full, so a join and a leave at a boundary do not
     * each reallocate; out of memory, the larger array is kept. */
    if (ch->count == 0)
        members_resize(core, ch, 0);
    else if (ch->count <= ch->cap / 4)
        members_resize(core, ch, ch->cap / 2);
    return true;
}

int rtm_chan_enter(struct rtm_core *core, struct rtm_session *session, struct rtm_channel *ch,
                   bool *first)
{
    struct rtm_channels *chs = core->channels;
    if (chans_reserve(core, session) != 0)
        return -1;
    if (member_add(core, ch, session->user, first) != 0) {
        if (rtm_chan_joined(session) == 0) { /* the array was made for this join */
            store_free(core, session->channels, chans_size(chans_of(session)->cap));
            session->channels = NULL;
        }
        return -1;
    }
    struct session_chans *sc = chans_of(session);
    sc->v[sc->n++] = ch;
    chs->memberships++;
    if (*first && ch->count == 1)
        chs->live++;
    return 0;
}

bool rtm_chan_exit(struct rtm_core *core, struct rtm_session *session, struct rtm_channel *ch)
{
    struct rtm_channels *chs = core->channels;
    chans_remove(core, session, ch);
    chs->memberships--;
    bool last = member_remove(core, ch, session->user);
    if (last && ch->count == 0)
        chs->live--;
    return last;
}

size_t rtm_chan_list(const struct rtm_channel *ch, const char **out, size_t max)
{
    size_t n = ch->count < max ? ch->count : max;
    for (size_t i = 0; i < n; i++)
        out[i] = ch->members[i].user->uid;
    return n;
}

/* --- teardown ------------------------------------------------------------------- */

void rtm_chan_free_all(struct rtm_core *core)
{
    struct rtm_channels *chs = core->channels;
    if (!chs)
        return;
    /* Every session's array: the sessions are still in their table. */
    for (size_t b = 0; core->sessions.buckets && b <= core->sessions.mask; b++) {
        for (struct rtm_hnode *n = core->sessions.buckets[b]; n; n = n->next) {
            struct rtm_session *s = rtm_container_of(n, struct rtm_session, node);
            struct session_chans *sc = chans_of(s);
            if (sc)
                store_free(core, sc, chans_size(sc->cap));
            s->channels = NULL;
        }
    }
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&chs->table)) != NULL) {
        struct rtm_channel *ch = rtm_container_of(n, struct rtm_channel, node);
        rtm_timer_disarm(core, &ch->timer);
        channel_release(core, ch);
    }
    rtm_hash_fini(&chs->table);
    free(chs);
    core->channels = NULL;
}
