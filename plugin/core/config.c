/*
 * Plugin options. One table lists every option with its parser and limits;
 * parsing walks the options Mosquitto hands over, finds each in the table,
 * and stops at the first bad one with a message that names it.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_config.h"
#include "rtm_procnet.h"
#include "rtm_topic.h"

enum opt_kind {
    OPT_SECONDS,
    OPT_MS,
    OPT_UINT,
    OPT_BOOL,
    OPT_ENUM,
    OPT_PREFIX,
    OPT_UID_LIST,
    OPT_TEXT,      /* printable ASCII, stored in a char array of the config */
    OPT_URL,       /* http:// or https:// and printable, no trailing slash kept */
    OPT_JSON,      /* a JSON object */
    OPT_FILE_TEXT, /* the trimmed first line of a file, into another text field */
    OPT_LISTENER,  /* host:port or none */
};

struct opt_def {
    const char *name;
    enum opt_kind kind;
    size_t offset;
    uint64_t min;
    uint64_t max;
    const char *const *choices; /* OPT_ENUM: index = enum value */
};

static const char *const identity_choices[] = {"auto", "username", "clientid", NULL};
static const char *const auth_choices[] = {"none", "defer", "token", NULL};
static const char *const other_choices[] = {"defer", "allow", NULL};
static const char *const lifetime_choices[] = {"session", "persistent", NULL};

#define FIELD(f) offsetof(struct rtm_config, f)
#define DAY_S    86400

static const struct opt_def opt_defs[] = {
    {"topic_prefix", OPT_PREFIX, FIELD(topic_prefix), 0, 0, NULL},
    {"identity", OPT_ENUM, FIELD(identity), 0, 0, identity_choices},
    {"auth", OPT_ENUM, FIELD(auth), 0, 0, auth_choices},
    {"token_secret", OPT_TEXT, FIELD(token_secret), 0, RTM_CONFIG_TEXT_MAX, NULL},
    {"token_secret_file", OPT_FILE_TEXT, FIELD(token_secret), 0, RTM_CONFIG_TEXT_MAX, NULL},
    {"token_leeway", OPT_UINT, FIELD(token_leeway_s), 0, 3600, NULL},
    {"other_topics", OPT_ENUM, FIELD(other_topics), 0, 0, other_choices},
    {"invite_timeout", OPT_SECONDS, FIELD(invite_timeout_ms), 1, DAY_S, NULL},
    {"ring_timeout", OPT_SECONDS, FIELD(ring_timeout_ms), 1, DAY_S, NULL},
    {"caller_grace", OPT_SECONDS, FIELD(caller_grace_ms), 1, DAY_S, NULL},
    {"max_invite_timeout", OPT_UINT, FIELD(max_invite_timeout_s), 1, DAY_S, NULL},
    {"busy_limit", OPT_UINT, FIELD(busy_limit), 1, 1000000, NULL},
    {"invite_rate", OPT_UINT, FIELD(invite_rate), 1, 1000000, NULL},
    {"max_payload", OPT_UINT, FIELD(max_payload), 256, 268435455, NULL},
    {"admin_users", OPT_UID_LIST, FIELD(admin_users), 0, 0, NULL},
    {"max_message", OPT_UINT, FIELD(max_message), 1, 16777216, NULL},
    {"message_rate", OPT_UINT, FIELD(message_rate), 1, 100000, NULL},
    {"join_rate", OPT_UINT, FIELD(join_rate), 1, 100000, NULL},
    {"max_channels", OPT_UINT, FIELD(max_channels), 1, 1000, NULL},
    {"member_events_max", OPT_UINT, FIELD(member_events_max), 0, 1000000, NULL},
    {"user_attr_lifetime", OPT_ENUM, FIELD(user_attr_lifetime), 0, 0, lifetime_choices},
    {"max_attr_keys", OPT_UINT, FIELD(max_attr_keys), 1, 1000, NULL},
    {"max_attr_bytes", OPT_UINT, FIELD(max_attr_bytes), 1, 1048576, NULL},
    {"max_attributes", OPT_UINT, FIELD(max_attributes), 1, 100000000, NULL},
    {"attr_rate", OPT_UINT, FIELD(attr_rate), 1, 10000, NULL},
    {"device_rate", OPT_UINT, FIELD(device_rate), 1, 1000000, NULL},
    {"max_devices", OPT_UINT, FIELD(max_devices), 1, 1000, NULL},
    {"push_fallback_ms", OPT_MS, FIELD(push_fallback_ms), 0, 600000, NULL},
    {"push_on_cancel", OPT_BOOL, FIELD(push_on_cancel), 0, 0, NULL},
    {"apns_production", OPT_BOOL, FIELD(apns_production), 0, 0, NULL},
    {"push_queue_max", OPT_UINT, FIELD(push_queue_max), 1, 1000000, NULL},
    {"push_timeout_ms", OPT_MS, FIELD(push_timeout_ms), 100, 600000, NULL},
    {"jpush_app_key", OPT_TEXT, FIELD(jpush_app_key), 0, RTM_CONFIG_TEXT_MAX, NULL},
    {"jpush_master_secret", OPT_TEXT, FIELD(jpush_master_secret), 0, RTM_CONFIG_TEXT_MAX, NULL},
    {"jpush_master_secret_file", OPT_FILE_TEXT, FIELD(jpush_master_secret), 0, RTM_CONFIG_TEXT_MAX,
     NULL},
    {"jpush_endpoint", OPT_URL, FIELD(jpush_endpoint), 0, RTM_CONFIG_TEXT_MAX, NULL},
    {"jpush_options", OPT_JSON, FIELD(jpush_options), 0, RTM_CONFIG_JSON_MAX, NULL},
    {"jpush_ca_file", OPT_TEXT, FIELD(jpush_ca_file), 0, RTM_CONFIG_TEXT_MAX, NULL},
    {"push_title", OPT_TEXT, FIELD(push_title), 1, RTM_CONFIG_TEXT_MAX, NULL},
    {"push_alert", OPT_TEXT, FIELD(push_alert), 1, RTM_CONFIG_TEXT_MAX, NULL},
    {"stats_interval", OPT_UINT, FIELD(stats_interval_s), 0, 86400, NULL},
    {"stats_heap", OPT_BOOL, FIELD(stats_heap), 0, 0, NULL},
    {"debug_log", OPT_BOOL, FIELD(debug_log), 0, 0, NULL},
    {"registry_listener", OPT_LISTENER, FIELD(registry_listener), 0, RTM_CONFIG_TEXT_MAX, NULL},
};

void rtm_config_defaults(struct rtm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->topic_prefix, "rtm");
    cfg->prefix_len = 3;
    cfg->identity = RTM_IDENTITY_AUTO;
    cfg->auth = RTM_AUTH_NONE;
    cfg->token_leeway_s = 30;
    cfg->other_topics = RTM_OTHER_DEFER;
    cfg->invite_timeout_ms = 30 * 1000;
    cfg->ring_timeout_ms = 60 * 1000;
    cfg->caller_grace_ms = 10 * 1000;
    cfg->max_invite_timeout_s = 120;
    cfg->busy_limit = 16;
    cfg->invite_rate = 60;
    cfg->max_payload = 8192;
    cfg->max_message = 32768;
    cfg->message_rate = 60;
    cfg->join_rate = 10;
    cfg->max_channels = 20;
    cfg->member_events_max = 512;
    cfg->user_attr_lifetime = RTM_ATTR_SESSION;
    cfg->max_attr_keys = 32;
    cfg->max_attr_bytes = 8192;
    cfg->max_attributes = 1000000;
    cfg->attr_rate = 10;
    cfg->max_devices = 10;
    cfg->device_rate = 30;
    cfg->push_fallback_ms = 5000;
    cfg->push_on_cancel = true;
    cfg->apns_production = false;
    cfg->push_queue_max = 10000;
    cfg->push_timeout_ms = 10000;
    strcpy(cfg->jpush_endpoint, "https://api.jpush.cn");
    strcpy(cfg->push_title, "Incoming call");
    strcpy(cfg->push_alert, "{caller} is calling");
    strcpy(cfg->registry_listener, "auto");
    cfg->stats_interval_s = 60;
}

/* Mosquitto passes the rest of the line: trim it into `buf`. */
static const char *trimmed(const char *value, char *buf, size_t size)
{
    while (isspace((unsigned char)*value))
        value++;
    size_t len = strlen(value);
    while (len > 0 && isspace((unsigned char)value[len - 1]))
        len--;
    if (len >= size)
        return NULL;
    memcpy(buf, value, len);
    buf[len] = '\0';
    return buf;
}

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_prefix(struct rtm_config *cfg, const char *s)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '/')
        len--;
    if (len == 0 || len > RTM_PREFIX_MAX || s[0] == '/' || s[0] == '$')
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+' || s[i] == '#' || (s[i] == '/' && s[i + 1] == '/'))
            return -1;
    }
    memcpy(cfg->topic_prefix, s, len);
    cfg->topic_prefix[len] = '\0';
    cfg->prefix_len = len;
    return 0;
}

static void free_list(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

/* Copies the list item p[0..len) into `item`, trimmed; false if invalid. */
static bool list_item(const char *p, size_t len, char *item, size_t size)
{
    char raw[RTM_UID_MAX + 64];
    if (len >= sizeof(raw))
        return false;
    memcpy(raw, p, len);
    raw[len] = '\0';
    return trimmed(raw, item, size) && rtm_uid_valid(item, strlen(item));
}

static int parse_uid_list(struct rtm_config *cfg, const char *s)
{
    char **list = NULL;
    size_t count = 0;
    for (const char *p = s; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[RTM_UID_MAX + 2];
        if (!list_item(p, len, item, sizeof(item)))
            goto fail;
        char **grown = realloc(list, (count + 1) * sizeof(*list));
        if (!grown)
            goto fail;
        list = grown;
        if (!(list[count] = strdup(item)))
            goto fail;
        count++;
        p += len + (comma ? 1 : 0);
    }
    free_list(cfg->admin_users, cfg->admin_count);
    cfg->admin_users = list;
    cfg->admin_count = count;
    return 0;
fail:
    free_list(list, count);
    return -1;
}

static int parse_enum(const char *const *choices, const char *s, int *out)
{
    for (int i = 0; choices[i]; i++) {
        if (strcmp(choices[i], s) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

/* Printable ASCII of `min` to `max` bytes, copied into the config's array. */
static int parse_text(const char *s, uint64_t min, uint64_t max, char *field)
{
    size_t len = strlen(s);
    if (len < min || len > max)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return -1;
    }
    memcpy(field, s, len + 1);
    return 0;
}

static int parse_url(const char *s, uint64_t max, char *field)
{
    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
        return -1;
    if (parse_text(s, 1, max, field) != 0 || strchr(s, ' '))
        return -1;
    size_t len = strlen(field);
    while (len > 0 && field[len - 1] == '/')
        field[--len] = '\0';
    return 0;
}

static int parse_json_object(const char *s, uint64_t max, char *field)
{
    cJSON *obj = cJSON_Parse(s);
    bool ok = cJSON_IsObject(obj) && strlen(s) <= max;
    cJSON_Delete(obj);
    if (!ok)
        return -1;
    memcpy(field, s, strlen(s) + 1);
    return 0;
}

/* The first line of the file at `path`, trimmed: a secret kept out of the
 * config file itself. */
static int read_file_text(const char *path, uint64_t max, char *field)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[RTM_CONFIG_TEXT_MAX + 2];
    char text[RTM_CONFIG_TEXT_MAX + 2];
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!ok || !trimmed(line, text, sizeof(text)) || text[0] == '\0')
        return -1;
    return parse_text(text, 1, max, field);
}

/* "auto", "none", or "IP:port" of one of this broker's plain MQTT
 * listeners (no host names: a lookup could hang the loader). */
static int parse_listener(const char *s, uint64_t max, char *field)
{
    struct rtm_procnet_socket addr;
    if (strcmp(s, "auto") != 0 && strcmp(s, "none") != 0 && !rtm_procnet_parse_address(s, &addr))
        return -1;
    return parse_text(s, 1, max, field);
}

static int apply(struct rtm_config *cfg, const struct opt_def *def, const char *s)
{
    char *field = (char *)cfg + def->offset;
    uint64_t v;
    int e;
    switch (def->kind) {
    case OPT_SECONDS:
        if (parse_uint(s, def->min, def->max, &v))
            return -1;
        *(int64_t *)(void *)field = (int64_t)v * 1000;
        return 0;
    case OPT_MS:
        if (parse_uint(s, def->min, def->max, &v))
            return -1;
        *(int64_t *)(void *)field = (int64_t)v;
        return 0;
    case OPT_UINT:
        if (parse_uint(s, def->min, def->max, &v))
            return -1;
        *(uint32_t *)(void *)field = (uint32_t)v;
        return 0;
    case OPT_BOOL:
        return parse_bool(s, (bool *)(void *)field);
    case OPT_TEXT:
        return parse_text(s, def->min, def->max, field);
    case OPT_URL:
        return parse_url(s, def->max, field);
    case OPT_JSON:
        return parse_json_object(s, def->max, field);
    case OPT_FILE_TEXT:
        return read_file_text(s, def->max, field);
    case OPT_LISTENER:
        return parse_listener(s, def->max, field);
    case OPT_ENUM:
        if (parse_enum(def->choices, s, &e))
            return -1;
        memcpy(field, &e, sizeof(e)); /* every option enum is int-sized */
        return 0;
    case OPT_PREFIX:
        return parse_prefix(cfg, s);
    case OPT_UID_LIST:
        return parse_uid_list(cfg, s);
    }
    return -1;
}

static void describe(const struct opt_def *def, char *err, size_t err_len)
{
    switch (def->kind) {
    case OPT_SECONDS:
    case OPT_MS:
    case OPT_UINT:
        snprintf(err, err_len, "plugin_opt_%s must be a whole number from %llu to %llu", def->name,
                 (unsigned long long)def->min, (unsigned long long)def->max);
        break;
    case OPT_BOOL:
        snprintf(err, err_len, "plugin_opt_%s must be true/false, yes/no, on/off or 1/0",
                 def->name);
        break;
    case OPT_TEXT:
        snprintf(err, err_len, "plugin_opt_%s must be %llu to %llu printable ASCII characters",
                 def->name, (unsigned long long)def->min, (unsigned long long)def->max);
        break;
    case OPT_URL:
        snprintf(err, err_len, "plugin_opt_%s must be an http:// or https:// URL", def->name);
        break;
    case OPT_JSON:
        snprintf(err, err_len, "plugin_opt_%s must be a JSON object of at most %llu bytes",
                 def->name, (unsigned long long)def->max);
        break;
    case OPT_FILE_TEXT:
        snprintf(err, err_len,
                 "plugin_opt_%s must name a readable file whose first line holds the value",
                 def->name);
        break;
    case OPT_LISTENER:
        snprintf(err, err_len,
                 "plugin_opt_%s must be auto, none, or IP:port of a plain MQTT listener of this "
                 "broker (127.0.0.1:1883, [::1]:1883)",
                 def->name);
        break;
    case OPT_ENUM: {
        size_t used = (size_t)snprintf(err, err_len, "plugin_opt_%s must be one of:", def->name);
        for (int i = 0; def->choices[i] && used < err_len; i++)
            used += (size_t)snprintf(err + used, err_len - used, " %s", def->choices[i]);
        break;
    }
    case OPT_PREFIX:
        snprintf(err, err_len,
                 "plugin_opt_%s must be 1-%d characters of topic levels, without '+', '#', "
                 "a leading '/' or '$', or empty levels",
                 def->name, RTM_PREFIX_MAX);
        break;
    case OPT_UID_LIST:
        snprintf(
            err, err_len,
            "plugin_opt_%s must be a comma separated list of uids (1-64 of A-Z a-z 0-9 _ . @ -)",
            def->name);
        break;
    }
}

static const struct opt_def *find_def(const char *name)
{
    for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
        if (strcmp(opt_defs[i].name, name) == 0)
            return &opt_defs[i];
    }
    return NULL;
}

static int check_token_secret(const struct rtm_config *cfg, char *err, size_t err_len)
{
    size_t len = strlen(cfg->token_secret);
    if (cfg->auth == RTM_AUTH_TOKEN && len < RTM_TOKEN_SECRET_MIN) {
        snprintf(err, err_len,
                 "plugin_opt_auth token needs plugin_opt_token_secret (or _file) of at least %d "
                 "characters",
                 RTM_TOKEN_SECRET_MIN);
        return -1;
    }
    if (cfg->auth != RTM_AUTH_TOKEN && len > 0) {
        snprintf(err, err_len,
                 "plugin_opt_token_secret (or _file) is given but plugin_opt_auth is not token");
        return -1;
    }
    return 0;
}

static int check_consistency(const struct rtm_config *cfg, char *err, size_t err_len)
{
    if (check_token_secret(cfg, err, err_len) != 0)
        return -1;
    if (cfg->invite_timeout_ms > (int64_t)cfg->max_invite_timeout_s * 1000) {
        snprintf(err, err_len,
                 "plugin_opt_invite_timeout must not exceed plugin_opt_max_invite_timeout");
        return -1;
    }
    if (!cfg->jpush_app_key[0] != !cfg->jpush_master_secret[0]) {
        snprintf(err, err_len,
                 "plugin_opt_jpush_app_key and plugin_opt_jpush_master_secret (or _file) "
                 "must be given together");
        return -1;
    }
    return 0;
}

int rtm_config_parse(struct rtm_config *cfg, const struct rtm_option *opts, size_t count, char *err,
                     size_t err_len)
{
    char value[4096];
    for (size_t i = 0; i < count; i++) {
        const struct opt_def *def = find_def(opts[i].key);
        if (!def) {
            snprintf(err, err_len, "unknown option plugin_opt_%s", opts[i].key);
            goto fail;
        }
        const char *v = trimmed(opts[i].value ? opts[i].value : "", value, sizeof(value));
        if (!v || apply(cfg, def, v) != 0) {
            describe(def, err, err_len);
            goto fail;
        }
    }
    if (check_consistency(cfg, err, err_len) == 0)
        return 0;
fail:
    rtm_config_free(cfg);
    return -1;
}

void rtm_config_free(struct rtm_config *cfg)
{
    /* Secrets do not outlive the configuration in memory. */
    OPENSSL_cleanse(cfg->token_secret, sizeof(cfg->token_secret));
    OPENSSL_cleanse(cfg->jpush_master_secret, sizeof(cfg->jpush_master_secret));
    free_list(cfg->admin_users, cfg->admin_count);
    cfg->admin_users = NULL;
    cfg->admin_count = 0;
}

bool rtm_config_is_admin(const struct rtm_config *cfg, const char *uid)
{
    for (size_t i = 0; uid && i < cfg->admin_count; i++) {
        if (strcmp(cfg->admin_users[i], uid) == 0)
            return true;
    }
    return false;
}
