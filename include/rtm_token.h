/*
 * Login tokens (SPEC 7): `rtm1.<expiry>.<sig>`, where <expiry> is whole
 * seconds since the epoch in decimal and <sig> is the unpadded base64url of
 * HMAC-SHA256(key = the secret's bytes, message = "rtm1.<uid>.<expiry>").
 * An application server mints one per user; the plugin verifies it as the
 * MQTT password. Pure: the caller passes the time.
 */
#ifndef RTM_TOKEN_H
#define RTM_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* A login token: "rtm1." + at most 12 digits (year 9999 fits) + "." + 43 signature chars. */
#define RTM_TOKEN_EXPIRY_DIGITS_MAX 12
#define RTM_TOKEN_SIG_LEN           43
#define RTM_LOGIN_TOKEN_MAX         (5 + RTM_TOKEN_EXPIRY_DIGITS_MAX + 1 + RTM_TOKEN_SIG_LEN)

enum rtm_token_result {
    RTM_TOKEN_OK,
    RTM_TOKEN_MALFORMED,     /* not rtm1.<digits>.<43 base64url chars> */
    RTM_TOKEN_BAD_SIGNATURE, /* another uid's token, another secret, or forged */
    RTM_TOKEN_EXPIRED,       /* genuine, but past its expiry plus the leeway */
};

/* Writes the token for `uid` expiring at `expiry_s` into `out` (NUL
 * terminated). Returns its length, or -1 when `expiry_s` is out of range
 * (0 .. 10^12 - 1), `out` is too small or the HMAC fails. */
int rtm_token_mint(const void *secret, size_t secret_len, const char *uid, int64_t expiry_s,
                   char *out, size_t out_size);

/* Checks `token` for `uid` at `now_s`, allowing `leeway_s` of clock skew.
 * The signature is compared in constant time. */
enum rtm_token_result rtm_token_verify(const void *secret, size_t secret_len, const char *uid,
                                       const char *token, int64_t now_s, int64_t leeway_s);

/* "ok", "malformed", "bad signature", "expired": for log lines. */
const char *rtm_token_result_name(enum rtm_token_result result);

#endif
