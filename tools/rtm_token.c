/*
 * rtm-token: mints (or checks) mosquitto-rtm login tokens, for application
 * servers, scripts and tests. The secret is read exactly as the plugin reads
 * plugin_opt_token_secret(_file), through the same option parser, and never
 * from the command line, where other users could see it in `ps`.
 *
 *   RTM_TOKEN_SECRET=... rtm-token --uid bob --ttl 3600
 *   rtm-token --secret-file /etc/mosquitto/rtm.secret --uid bob --expiry 1893456000
 *   rtm-token --secret-file F --uid bob --check rtm1.1893456000.mR6n...
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtm_config.h"
#include "rtm_token.h"
#include "rtm_topic.h"

struct args {
    const char *uid;
    const char *secret_file;
    const char *check;
    long long expiry; /* -1: from ttl */
    long long ttl;
    long long leeway;
};

static void usage(FILE *out)
{
    fputs("usage: rtm-token --uid UID (--expiry EPOCH_SECONDS | --ttl SECONDS) [--secret-file F]\n"
          "       rtm-token --uid UID --check TOKEN [--leeway SECONDS] [--secret-file F]\n"
          "The secret comes from --secret-file (its first line) or the environment\n"
          "variable RTM_TOKEN_SECRET, as plugin_opt_token_secret(_file) would give it.\n"
          "Minting prints the token; --check prints ok, malformed, bad signature or expired\n"
          "and exits 0 only for ok.\n",
          out);
}

static bool parse_number(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_args(int argc, char **argv, struct args *a)
{
    *a = (struct args){.expiry = -1, .ttl = -1, .leeway = 30};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = val != NULL;
        if (ok && strcmp(opt, "--uid") == 0)
            a->uid = val;
        else if (ok && strcmp(opt, "--secret-file") == 0)
            a->secret_file = val;
        else if (ok && strcmp(opt, "--check") == 0)
            a->check = val;
        else if (ok && strcmp(opt, "--expiry") == 0)
            ok = parse_number(val, &a->expiry);
        else if (ok && strcmp(opt, "--ttl") == 0)
            ok = parse_number(val, &a->ttl);
        else if (ok && strcmp(opt, "--leeway") == 0)
            ok = parse_number(val, &a->leeway);
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "rtm-token: bad or incomplete argument: %s\n", opt);
            return false;
        }
    }
    if (!a->uid || !rtm_uid_valid(a->uid, strlen(a->uid))) {
        fprintf(stderr, "rtm-token: --uid must be 1-64 characters of A-Z a-z 0-9 _ . @ -\n");
        return false;
    }
    if (!a->check && (a->expiry < 0) == (a->ttl < 0)) {
        fprintf(stderr, "rtm-token: give exactly one of --expiry and --ttl\n");
        return false;
    }
    return true;
}

/* The secret through the plugin's own option parser: same trimming, same
 * file rules, same minimum length. */
static bool load_secret(const struct args *a, struct rtm_config *cfg)
{
    const char *env = getenv("RTM_TOKEN_SECRET");
    struct rtm_option opts[] = {
        {"auth", "token"},
        a->secret_file ? (struct rtm_option){"token_secret_file", a->secret_file}
                       : (struct rtm_option){"token_secret", env ? env : ""},
    };
    char err[256];
    rtm_config_defaults(cfg);
    if (rtm_config_parse(cfg, opts, 2, err, sizeof(err)) != 0) {
        fprintf(stderr, "rtm-token: %s\n", err);
        return false;
    }
    return true;
}

static int check(const struct args *a, const struct rtm_config *cfg)
{
    enum rtm_token_result r = rtm_token_verify(cfg->token_secret, strlen(cfg->token_secret), a->uid,
                                               a->check, (int64_t)time(NULL), a->leeway);
    puts(rtm_token_result_name(r));
    return r == RTM_TOKEN_OK ? 0 : 1;
}

static int mint(const struct args *a, const struct rtm_config *cfg)
{
    long long expiry = a->expiry >= 0 ? a->expiry : (long long)time(NULL) + a->ttl;
    char token[RTM_LOGIN_TOKEN_MAX + 1];
    if (rtm_token_mint(cfg->token_secret, strlen(cfg->token_secret), a->uid, expiry, token,
                       sizeof(token)) < 0) {
        fprintf(stderr, "rtm-token: cannot mint a token expiring at %lld\n", expiry);
        return 1;
    }
    puts(token);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (!parse_args(argc, argv, &a)) {
        usage(stderr);
        return 2;
    }
    struct rtm_config cfg;
    if (!load_secret(&a, &cfg))
        return 2;
    int rc = a.check ? check(&a, &cfg) : mint(&a, &cfg);
    rtm_config_free(&cfg);
    return rc;
}
