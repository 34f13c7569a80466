/*
 * The start-up check of libcurl's default CA bundle (rtm_http_ca_ok): a
 * missing or unreadable bundle is reported with its path and the package
 * that provides it; a readable one, or none configured, passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtm_http.h"

static void expect_missing(const char *cainfo, const char *capath, const char *named)
{
    char why[320] = "";
    assert_false(rtm_http_ca_ok(cainfo, capath, why, sizeof(why)));
    if (!strstr(why, named) || !strstr(why, "ca-certificates") ||
        !strstr(why, "plugin_opt_jpush_ca_file"))
        fail_msg("the warning \"%s\" should name %s, ca-certificates and jpush_ca_file", why,
                 named);
}

static void test_missing_bundle_reported(void **state)
{
    (void)state;
    expect_missing("/nonexistent/rtm/ca-certificates.crt", "/etc", "/nonexistent/rtm/ca-cer");
    expect_missing(NULL, "/nonexistent/rtm/certs", "/nonexistent/rtm/certs");
}

static void test_readable_bundle_passes(void **state)
{
    (void)state;
    char path[] = "/tmp/rtm-ca-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char why[320] = "";
    assert_true(rtm_http_ca_ok(path, NULL, why, sizeof(why)));
    assert_true(rtm_http_ca_ok(NULL, "/tmp", why, sizeof(why)));
    assert_true(rtm_http_ca_ok(NULL, NULL, why, sizeof(why)));
    assert_string_equal(why, "");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_bundle_reported),
        cmocka_unit_test(test_readable_bundle_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
