/*
 * Login tokens (rtm_token.h). The HMAC and the base64 come from OpenSSL's
 * libcrypto; this file only frames them. Verification re-mints the token
 * from the uid and the expiry it carries and compares the signatures in
 * constant time, so only the one canonical encoding of a signature passes.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rtm_token.h"

#define PREFIX     "rtm1."
#define PREFIX_LEN 5

static const int64_t expiry_limit = 1000000000000LL; /* 10^12: 12 digits */

/* Unpadded base64url of a 32-byte HMAC: always 43 characters. */
static bool sign(const void *secret, size_t secret_len, const char *message,
                 char out[RTM_TOKEN_SIG_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (secret_len > (size_t)INT32_MAX ||
        !HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)message,
              strlen(message), mac, &mac_len) ||
        mac_len != 32)
        return false;
    unsigned char b64[48]; /* 4 * ceil(32 / 3) + NUL */
    if (EVP_EncodeBlock(b64, mac, (int)mac_len) != 44)
        return false;
    for (int i = 0; i < RTM_TOKEN_SIG_LEN; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[RTM_TOKEN_SIG_LEN] = '\0'; /* drops the one '=' of padding */
    OPENSSL_cleanse(mac, sizeof(mac));
    return true;
}

static bool sign_for(const void *secret, size_t secret_len, const char *uid, const char *expiry,
                     char sig[RTM_TOKEN_SIG_LEN + 1])
{
    char message[PREFIX_LEN + 256 + 1 + RTM_TOKEN_EXPIRY_DIGITS_MAX + 1];
    int n = snprintf(message, sizeof(message), PREFIX "%s.%s", uid, expiry);
    return n > 0 && (size_t)n < sizeof(message) && sign(secret, secret_len, message, sig);
}

int rtm_token_mint(const void *secret, size_t secret_len, const char *uid, int64_t expiry_s,
                   char *out, size_t out_size)
{
    char expiry[RTM_TOKEN_EXPIRY_DIGITS_MAX + 1];
    char sig[RTM_TOKEN_SIG_LEN + 1];
    if (expiry_s < 0 || expiry_s >= expiry_limit)
        return -1;
    snprintf(expiry, sizeof(expiry), "%lld", (long long)expiry_s);
    if (!sign_for(secret, secret_len, uid, expiry, sig))
        return -1;
    int n = snprintf(out, out_size, PREFIX "%s.%s", expiry, sig);
    return n > 0 && (size_t)n < out_size ? n : -1;
}

static bool sig_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Splits `token` into its expiry (canonical decimal: no sign, no leading
 * zero) and its signature; false when it is not shaped like a token. */
static bool split_token(const char *token, char expiry[RTM_TOKEN_EXPIRY_DIGITS_MAX + 1],
                        int64_t *expiry_s, const char **sig)
{
    if (!token || strncmp(token, PREFIX, PREFIX_LEN) != 0)
        return false;
    const char *p = token + PREFIX_LEN;
    size_t digits = 0;
    int64_t value = 0;
    while (p[digits] >= '0' && p[digits] <= '9') {
        if (digits == RTM_TOKEN_EXPIRY_DIGITS_MAX)
            return false;
        value = value * 10 + (p[digits] - '0');
        expiry[digits] = p[digits];
        digits++;
    }
    if (digits == 0 || (p[0] == '0' && digits > 1) || p[digits] != '.')
        return false;
    expiry[digits] = '\0';
    *sig = p + digits + 1;
    for (size_t i = 0; i < RTM_TOKEN_SIG_LEN; i++) {
        if (!sig_char((*sig)[i]))
            return false;
    }
    *expiry_s = value;
    return (*sig)[RTM_TOKEN_SIG_LEN] == '\0';
}

enum rtm_token_result rtm_token_verify(const void *secret, size_t secret_len, const char *uid,
                                       const char *token, int64_t now_s, int64_t leeway_s)
{
    char expiry[RTM_TOKEN_EXPIRY_DIGITS_MAX + 1];
    char expected[RTM_TOKEN_SIG_LEN + 1];
    const char *sig;
    int64_t expiry_s;
    if (!uid || !split_token(token, expiry, &expiry_s, &sig))
        return RTM_TOKEN_MALFORMED;
    if (!sign_for(secret, secret_len, uid, expiry, expected) ||
        CRYPTO_memcmp(expected, sig, RTM_TOKEN_SIG_LEN) != 0)
        return RTM_TOKEN_BAD_SIGNATURE;
    if (now_s > expiry_s + leeway_s)
        return RTM_TOKEN_EXPIRED;
    return RTM_TOKEN_OK;
}

const char *rtm_token_result_name(enum rtm_token_result result)
{
    switch (result) {
    case RTM_TOKEN_OK:
        return "ok";
    case RTM_TOKEN_MALFORMED:
        return "malformed";
    case RTM_TOKEN_BAD_SIGNATURE:
        return "bad signature";
    case RTM_TOKEN_EXPIRED:
        return "expired";
    }
    return "?";
}
