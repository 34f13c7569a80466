/*
 * libFuzzer target: every parser of what clients and the network send.
 * The first input byte picks a parser from the table at the bottom (a
 * printable letter, so seed files read as "r{...}"); the rest is its input.
 * Adding a parser is one "feed" function and one line in that table.
 *
 * Invariants checked: what a parser accepts satisfies every documented rule
 * (types, lengths, character sets, bounds); what it refuses comes with a
 * reason and leaves nothing to free; the JSON the plugin writes from an
 * accepted request parses again under the same strict rules.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "rtm_config.h"
#include "rtm_core.h"
#include "rtm_message.h"
#include "rtm_push.h"
#include "rtm_registry.h"
#include "rtm_token.h"
#include "rtm_topic.h"

#define INPUT_MAX 16384 /* twice max_payload: bigger inputs only cost time */

static const struct rtm_config *default_config(void)
{
    static struct rtm_config cfg;
    static bool ready;
    if (!ready) {
        rtm_config_defaults(&cfg);
        ready = true;
    }
    return &cfg;
}

/* The smallest limits the options allow, so that inputs of a few hundred
 * bytes reach the size and timeout bounds too. */
static const struct rtm_config *small_config(void)
{
    static struct rtm_config cfg;
    static bool ready;
    if (!ready) {
        rtm_config_defaults(&cfg);
        cfg.max_payload = 256;
        cfg.max_invite_timeout_s = 5;
        ready = true;
    }
    return &cfg;
}

static bool no_control_chars(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

/* --- call requests ------------------------------------------------------------ */

static bool optional_ok(const char *s, size_t max)
{
    return !s || strlen(s) <= max;
}

static void check_request(const struct rtm_config *cfg, const struct rtm_request *req,
                          const char *buf, size_t size)
{
    FUZZ_CHECK(size <= cfg->max_payload && rtm_utf8_valid(buf, size));
    FUZZ_CHECK(req->json != NULL);
    FUZZ_CHECK(req->type >= RTM_MSG_INVITE && req->type <= RTM_MSG_CANCEL);
    FUZZ_CHECK(rtm_id_valid(req->id, strlen(req->id)));
    bool invite = req->type == RTM_MSG_INVITE;
    bool answer = req->type == RTM_MSG_ACCEPT || req->type == RTM_MSG_REFUSE;
    FUZZ_CHECK(invite || (!req->content && !req->channel && req->timeout_s == 0));
    FUZZ_CHECK(answer || !req->response);
    FUZZ_CHECK(optional_ok(req->content, RTM_CONTENT_MAX));
    FUZZ_CHECK(optional_ok(req->channel, RTM_CHANNEL_MAX));
    FUZZ_CHECK(!req->channel || no_control_chars(req->channel));
    FUZZ_CHECK(optional_ok(req->response, RTM_RESPONSE_MAX));
    FUZZ_CHECK(req->timeout_s <= cfg->max_invite_timeout_s);
}

static bool same_string(const cJSON *obj, const char *name, const char *want)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) && strcmp(item->valuestring, want) == 0;
}

/* The stamped event built from an accepted request is valid for our own
 * strict parser and carries the client's strings unchanged. */
static void check_event(const struct rtm_request *req)
{
    struct rtm_event ev = {
        .type = req->type,
        .id = req->id,
        .caller = "alice",
        .callee = "bob",
        .by = "alice",
        .ts = 1764100000000,
        .content = req->content,
        .channel = req->channel,
        .expires_at = 1764100030000,
        .response = req->response,
    };
    size_t len;
    char *json = rtm_event_json(&ev, &len);
    FUZZ_CHECK(json != NULL && strlen(json) == len);
    const char *why = NULL;
    cJSON *root = rtm_json_object_parse(json, len, &why);
    FUZZ_CHECK(root != NULL);
    FUZZ_CHECK(same_string(root, "id", req->id));
    FUZZ_CHECK(!req->content || same_string(root, "content", req->content));
    FUZZ_CHECK(!req->channel || same_string(root, "channel", req->channel));
    FUZZ_CHECK(!req->response || same_string(root, "response", req->response));
    cJSON_Delete(root);
    free(json);
}

static void parse_request(const struct rtm_config *cfg, const uint8_t *data, size_t size)
{
    char *buf = fuzz_bytes(data, size);
    struct rtm_request req;
    const char *why = NULL;
    enum rtm_err err = rtm_request_parse(buf, size, cfg, &req, &why);
    if (err == RTM_OK) {
        check_request(cfg, &req, buf, size);
        check_event(&req);
    } else {
        FUZZ_CHECK(err == RTM_ERR_BAD_REQUEST && why && *why);
        FUZZ_CHECK(!req.id[0] || rtm_id_valid(req.id, strlen(req.id)));
    }
    rtm_request_free(&req);
    FUZZ_CHECK(req.json == NULL);
    free(buf);
}

static void feed_request(const uint8_t *data, size_t size)
{
    parse_request(default_config(), data, size);
}

static void feed_request_small(const uint8_t *data, size_t size)
{
    parse_request(small_config(), data, size);
}

/* --- JSON objects --------------------------------------------------------------- */

static void check_members(const cJSON *root)
{
    size_t n = 0;
    for (const cJSON *a = root->child; a; a = a->next, n++) {
        FUZZ_CHECK(a->string != NULL);
        for (const cJSON *b = a->next; b; b = b->next)
            FUZZ_CHECK(strcmp(a->string, b->string) != 0);
    }
    FUZZ_CHECK(n <= RTM_JSON_MEMBERS_MAX);
}

static void feed_json_object(const uint8_t *data, size_t size)
{
    char *buf = fuzz_bytes(data, size);
    const char *why = NULL;
    cJSON *root = rtm_json_object_parse(buf, size, &why);
    free(buf);
    if (!root) {
        FUZZ_CHECK(why && *why);
        return;
    }
    FUZZ_CHECK(cJSON_IsObject(root));
    check_members(root);
    /* What was accepted, printed again, is accepted again. */
    char *text = cJSON_PrintUnformatted(root);
    FUZZ_CHECK(text != NULL);
    cJSON *again = rtm_json_object_parse(text, strlen(text), &why);
    FUZZ_CHECK(again != NULL);
    cJSON_Delete(again);
    free(text);
    cJSON_Delete(root);
}

/* --- device registrations -------------------------------------------------------- */

static bool token_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= RTM_TOKEN_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "abcdefghijklmnopqrstuvwxyz"
                     "0123456789_-:.") == n;
}

static void feed_registration(const uint8_t *data, size_t size)
{
    char *buf = fuzz_bytes(data, size);
    struct rtm_registration reg;
    const char *why = NULL;
    bool ok = rtm_registration_parse(buf, size, &reg, &why);
    free(buf);
    if (!ok) {
        static const struct rtm_registration zero;
        FUZZ_CHECK(why && *why);
        FUZZ_CHECK(memcmp(&reg, &zero, sizeof(reg)) == 0);
        return;
    }
    FUZZ_CHECK(size <= 1024);
    FUZZ_CHECK(strcmp(reg.provider, "jpush") == 0);
    FUZZ_CHECK(reg.platform <= RTM_PLATFORM_HMOS && *rtm_platform_name(reg.platform));
    FUZZ_CHECK(token_ok(reg.token));
}

/* --- retained presence ------------------------------------------------------------- */

static void feed_presence(const uint8_t *data, size_t size)
{
    char *buf = fuzz_bytes(data, size);
    enum rtm_presence_claim claim = rtm_presence_payload_claim(buf, size, "bob");
    FUZZ_CHECK(claim == RTM_PRESENCE_NOT_OURS || size > 0);
    /* What it accepts as bob's, the plugin would have written for bob. */
    if (claim != RTM_PRESENCE_NOT_OURS) {
        cJSON *root = cJSON_ParseWithLength(buf, size);
        FUZZ_CHECK(cJSON_IsObject(root));
        const cJSON *uid = cJSON_GetObjectItemCaseSensitive(root, "uid");
        FUZZ_CHECK(cJSON_IsString(uid) && strcmp(uid->valuestring, "bob") == 0);
        FUZZ_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "online")) ==
                   (claim == RTM_PRESENCE_ONLINE));
        cJSON_Delete(root);
    }
    free(buf);
}

/* --- JPush responses ------------------------------------------------------------------ */

/* A header value, or NULL when its flag bit is clear. */
static char *header(struct fuzz_reader *r, uint8_t flags, uint8_t bit)
{
    size_t len;
    const uint8_t *at = fuzz_until(r, '\0', &len);
    return flags & bit ? fuzz_string(at, len) : NULL;
}

static void check_verdict(const struct rtm_push_response *resp, const struct rtm_push_verdict *v)
{
    FUZZ_CHECK(v->outcome >= RTM_PUSH_OK && v->outcome <= RTM_PUSH_REJECTED);
    FUZZ_CHECK(memchr(v->message, '\0', sizeof(v->message)) != NULL);
    FUZZ_CHECK(v->provider_code >= 0 && v->provider_code <= 999999999);
    FUZZ_CHECK(v->retry_after_ms == -1 ||
               (v->outcome == RTM_PUSH_RETRY && v->retry_after_ms <= 999999999LL * 1000));
    if (resp->status == 0) {
        FUZZ_CHECK(v->outcome == RTM_PUSH_RETRY && v->provider_code == 0);
        return;
    }
    /* The message goes into one log line: the body cannot break it. */
    FUZZ_CHECK(no_control_chars(v->message));
    if (resp->status >= 200 && resp->status <= 299)
        FUZZ_CHECK(v->outcome == RTM_PUSH_OK);
    if (resp->status >= 500 && resp->status <= 599)
        FUZZ_CHECK(v->outcome == RTM_PUSH_RETRY);
}

/* Input: status (2 bytes, big endian), a flags byte saying which of the
 * three NUL-terminated header values that follow are present, then the body. */
static void feed_jpush_response(const uint8_t *data, size_t size)
{
    struct fuzz_reader r = {data, size};
    long status = (long)fuzz_byte(&r) << 8;
    status |= fuzz_byte(&r);
    uint8_t flags = fuzz_byte(&r);
    char *retry_after = header(&r, flags, 1);
    char *reset = header(&r, flags, 2);
    char *error = header(&r, flags, 4);
    char *body = fuzz_bytes(r.p, r.left);
    struct rtm_push_response resp = {status, body, r.left, retry_after, reset, error};
    struct rtm_push_verdict v;
    memset(&v, 0xA5, sizeof(v));
    rtm_push_jpush.classify(&resp, &v);
    check_verdict(&resp, &v);
    free(retry_after);
    free(reset);
    free(error);
    free(body);
}

/* --- JPush requests ------------------------------------------------------------------ */

/* The request carries the call's strings (the channel comes from the
 * client) and the templates: whatever they hold, it is one valid JSON
 * object with the call's id for apns_collapse_id. */
static void check_request_body(const struct rtm_push_request *req, const struct rtm_push *push,
                               size_t count)
{
    cJSON *root = cJSON_ParseWithLength(req->body, req->body_len);
    FUZZ_CHECK(cJSON_IsObject(root) && strlen(req->body) == req->body_len);
    const cJSON *options = cJSON_GetObjectItemCaseSensitive(root, "options");
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(options, "time_to_live");
    const cJSON *collapse = cJSON_GetObjectItemCaseSensitive(options, "apns_collapse_id");
    const cJSON *audience = cJSON_GetObjectItemCaseSensitive(root, "audience");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(audience, "registration_id");
    FUZZ_CHECK(cJSON_IsNumber(ttl) && ttl->valuedouble >= 1 && ttl->valuedouble <= 864000);
    FUZZ_CHECK(cJSON_IsString(collapse) && strcmp(collapse->valuestring, push->call_id) == 0);
    FUZZ_CHECK(cJSON_GetArraySize(ids) == (int)count);
    cJSON_Delete(root);
}

/* The next `n` NUL-separated strings of the input (empty once it runs out). */
static void split_strings(struct fuzz_reader *r, char **out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *at = fuzz_until(r, '\0', &len);
        out[i] = fuzz_string(at, len);
    }
}

/* Input: eight bytes of the call's expires_at (any int64, big endian: odd
 * clocks included), then title NUL alert NUL channel NUL caller, the strings
 * the request is built from. */
static void feed_jpush_request(const uint8_t *data, size_t size)
{
    struct fuzz_reader r = {data, size};
    uint64_t expires_at = 0;
    for (int i = 0; i < 8; i++)
        expires_at = expires_at << 8 | fuzz_byte(&r);
    char *parts[4];
    split_strings(&r, parts, 4);
    struct rtm_push_settings settings = {
        .endpoint = "https://api.jpush.cn",
        .app_key = "key",
        .master_secret = "secret",
        .title = parts[0],
        .alert = parts[1],
        .apns_production = true,
    };
    const int64_t now = 1764100000000;
    struct rtm_push push = {
        .kind = RTM_PUSH_CALL_INVITE,
        .call_id = "call-1",
        .caller = parts[3],
        .callee = "bob",
        .channel = parts[2],
        .expires_at = (int64_t)expires_at,
        .why = "fuzz",
        .now_ms = now,
    };
    const char *const tokens[] = {"T1", "T2", "T3"};
    struct rtm_push_request req;
    FUZZ_CHECK(rtm_push_jpush.build(&settings, &push, tokens, 3, now, &req) == 0);
    check_request_body(&req, &push, 3);
    rtm_push_request_free(&req);
    for (size_t i = 0; i < 4; i++)
        free(parts[i]);
}

/* --- plugin options ---------------------------------------------------------------------- */

#define OPTIONS_MAX 16

static void check_config(const struct rtm_config *cfg)
{
    const char *px = cfg->topic_prefix;
    FUZZ_CHECK(cfg->prefix_len == strlen(px) && cfg->prefix_len >= 1);
    FUZZ_CHECK(px[0] != '/' && px[0] != '$' && px[cfg->prefix_len - 1] != '/');
    FUZZ_CHECK(!strpbrk(px, "+#") && !strstr(px, "//"));
    for (size_t i = 0; i < cfg->admin_count; i++)
        FUZZ_CHECK(rtm_uid_valid(cfg->admin_users[i], strlen(cfg->admin_users[i])));
    FUZZ_CHECK(cfg->invite_timeout_ms <= (int64_t)cfg->max_invite_timeout_s * 1000);
    FUZZ_CHECK(!cfg->jpush_app_key[0] == !cfg->jpush_master_secret[0]);
    size_t secret = strlen(cfg->token_secret);
    FUZZ_CHECK(cfg->auth == RTM_AUTH_TOKEN ? secret >= RTM_TOKEN_SECRET_MIN : secret == 0);
    if (cfg->jpush_options[0]) {
        /* What config load accepts, the push start-up can read. */
        struct rtm_push_options prepared;
        FUZZ_CHECK(rtm_push_options_prepare(cfg->jpush_options, &prepared) == 0);
        rtm_push_options_free(&prepared);
    }
    FUZZ_CHECK(cfg->busy_limit >= 1 && cfg->invite_rate >= 1 && cfg->max_devices >= 1);
}

static void drop_publish(void *ud, const struct rtm_publish *msg)
{
    (void)ud;
    (void)msg;
}

static void drop_log(void *ud, enum rtm_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    (void)line;
}

/* Any configuration the parser accepts makes a working core. */
static void check_core(const struct rtm_config *cfg)
{
    static const struct rtm_sink sink = {NULL, drop_publish, drop_log};
    struct rtm_core *core = rtm_core_new(cfg, &sink, NULL);
    FUZZ_CHECK(core != NULL);
    char inbox[RTM_PREFIX_MAX + 16];
    snprintf(inbox, sizeof(inbox), "%s/u/bob/call", cfg->topic_prefix);
    FUZZ_CHECK(rtm_core_owns_topic(core, inbox));
    rtm_core_free(core);
}

/* Input: lines of key=value (a line without '=' passes a NULL value). A
 * *_file option would open whatever path the input names (a FIFO would hang
 * the fuzzer), so its value is always /dev/null. */
static size_t split_options(struct fuzz_reader *r, struct rtm_option *opts, char **strings)
{
    size_t n = 0;
    while (r->left && n < OPTIONS_MAX) {
        size_t len;
        const uint8_t *line = fuzz_until(r, '\n', &len);
        const uint8_t *eq = memchr(line, '=', len);
        size_t key_len = eq ? (size_t)(eq - line) : len;
        char *key = strings[2 * n] = fuzz_string(line, key_len);
        char *value = strings[2 * n + 1] = eq ? fuzz_string(eq + 1, len - key_len - 1) : NULL;
        size_t n_key = strlen(key); /* the key is cut at a NUL */
        bool file = n_key >= 5 && strcmp(key + n_key - 5, "_file") == 0;
        opts[n].key = key;
        opts[n].value = file ? "/dev/null" : value;
        n++;
    }
    return n;
}

static void feed_config(const uint8_t *data, size_t size)
{
    struct fuzz_reader r = {data, size};
    struct rtm_option opts[OPTIONS_MAX];
    char *strings[2 * OPTIONS_MAX] = {NULL};
    size_t n = split_options(&r, opts, strings);
    struct rtm_config cfg;
    rtm_config_defaults(&cfg);
    char err[256] = "";
    if (rtm_config_parse(&cfg, opts, n, err, sizeof(err)) == 0) {
        check_config(&cfg);
        check_core(&cfg);
        rtm_config_free(&cfg);
    } else {
        /* Refused: a reason, and nothing left to free (LeakSanitizer
         * would catch a leak: rtm_config_free is not called). */
        FUZZ_CHECK(err[0] != '\0' && cfg.admin_users == NULL && cfg.admin_count == 0);
    }
    for (size_t i = 0; i < 2 * n; i++)
        free(strings[i]);
}

/* --- identities --------------------------------------------------------------------------- */

/* Input: username NUL client id; an empty part is absent (NULL). */
static void feed_identity(const uint8_t *data, size_t size)
{
    struct fuzz_reader r = {data, size};
    size_t ulen, clen;
    const uint8_t *u = fuzz_until(&r, '\0', &ulen);
    const uint8_t *c = fuzz_take(&r, r.left, &clen);
    char *username = ulen ? fuzz_string(u, ulen) : NULL;
    char *client_id = clen ? fuzz_string(c, clen) : NULL;
    struct rtm_config cfg;
    rtm_config_defaults(&cfg);
    for (int mode = RTM_IDENTITY_AUTO; mode <= RTM_IDENTITY_CLIENTID; mode++) {
        cfg.identity = (enum rtm_identity)mode;
        const char *uid = rtm_identity_uid(&cfg, username, client_id);
        FUZZ_CHECK(!uid || uid == username || uid == client_id);
        FUZZ_CHECK(!uid || rtm_uid_valid(uid, strlen(uid)));
        FUZZ_CHECK(mode != RTM_IDENTITY_USERNAME || !uid || uid == username);
        FUZZ_CHECK(mode != RTM_IDENTITY_CLIENTID || !uid || uid == client_id);
    }
    free(username);
    free(client_id);
}

/* --- login tokens ------------------------------------------------------------------------- */

/* Input: uid NUL token (an MQTT password). Anything accepted must be the
 * one canonical token for that uid and expiry, which minting reproduces. */
static void feed_token(const uint8_t *data, size_t size)
{
    static const char secret[] = "s3cret-for-tests";
    struct fuzz_reader r = {data, size};
    size_t ulen, tlen;
    const uint8_t *u = fuzz_until(&r, '\0', &ulen);
    const uint8_t *t = fuzz_take(&r, r.left, &tlen);
    char *uid = fuzz_string(u, ulen);
    char *token = fuzz_string(t, tlen);
    enum rtm_token_result res =
        rtm_token_verify(secret, strlen(secret), uid, token, 1893456000, 30);
    FUZZ_CHECK(res >= RTM_TOKEN_OK && res <= RTM_TOKEN_EXPIRED);
    if (res == RTM_TOKEN_OK || res == RTM_TOKEN_EXPIRED) {
        long long expiry = strtoll(token + 5, NULL, 10);
        char again[RTM_LOGIN_TOKEN_MAX + 1];
        FUZZ_CHECK(rtm_token_mint(secret, strlen(secret), uid, expiry, again, sizeof(again)) > 0);
        FUZZ_CHECK(strcmp(again, token) == 0);
    }
    free(uid);
    free(token);
}

/* --- the table ------------------------------------------------------------------------------ */

struct feed {
    char key; /* the first input byte */
    void (*fn)(const uint8_t *data, size_t size);
};

static const struct feed feeds[] = {
    {'r', feed_request},        /* a call message: rtm_request_parse */
    {'R', feed_request_small},  /* the same with max_payload 256, max_invite_timeout 5 */
    {'j', feed_json_object},    /* rtm_json_object_parse */
    {'d', feed_registration},   /* a device registration: rtm_registration_parse */
    {'p', feed_presence},       /* a retained presence payload */
    {'h', feed_jpush_response}, /* an HTTP answer from JPush: classify */
    {'b', feed_jpush_request},  /* the JPush request built for a call: build */
    {'c', feed_config},         /* plugin_opt_ lines: rtm_config_parse */
    {'i', feed_identity},       /* username / client id: rtm_identity_uid */
    {'t', feed_token},          /* uid / login token: rtm_token_verify */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > INPUT_MAX)
        return 0;
    for (size_t i = 0; i < sizeof(feeds) / sizeof(feeds[0]); i++) {
        if (feeds[i].key == (char)data[0]) {
            feeds[i].fn(data + 1, size - 1);
            break;
        }
    }
    return 0;
}
