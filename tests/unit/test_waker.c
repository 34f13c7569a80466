/*
 * Unit tests for plugin/adapter/waker.c: a thread that keeps interrupting another
 * thread's wait, as it keeps Mosquitto 2.1's epoll_wait from sleeping for
 * seconds (include/rtm_waker.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "rtm_waker.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A wait of 10 s on nothing returns early, interrupted, within a few
 * periods, again and again; after the stop it is no longer interrupted,
 * and the signal is ignored, so one still on its way is dropped. */
static void test_interrupts_a_sleeping_wait(void **state)
{
    (void)state;
    char err[128];
    struct rtm_waker *w = rtm_waker_start(pthread_self(), 20, err, sizeof(err));
    assert_non_null(w);
    int sig = rtm_waker_signal(w);
    assert_true(sig >= SIGRTMIN && sig <= SIGRTMAX);
    for (int i = 0; i < 5; i++) {
        int64_t start = mono_ms();
        int rc = poll(NULL, 0, 10000);
        int err_no = errno;
        assert_int_equal(rc, -1);
        assert_int_equal(err_no, EINTR);
        assert_true(mono_ms() - start < 2000);
    }
    rtm_waker_stop(w);
    struct sigaction now;
    assert_int_equal(sigaction(sig, NULL, &now), 0);
    assert_ptr_equal(now.sa_handler, SIG_IGN);
    assert_int_equal(poll(NULL, 0, 100), 0); /* a full, quiet wait */
    signal(sig, SIG_DFL);
}

/* A signal someone else handles is never taken. */
static void on_theirs(int sig)
{
    (void)sig;
}

static void test_leaves_taken_signals_alone(void **state)
{
    (void)state;
    char err[128];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_theirs;
    assert_int_equal(sigaction(SIGRTMAX - 1, &sa, NULL), 0);
    struct rtm_waker *w = rtm_waker_start(pthread_self(), 1000, err, sizeof(err));
    assert_non_null(w);
    assert_int_not_equal(rtm_waker_signal(w), SIGRTMAX - 1);
    int sig = rtm_waker_signal(w);
    rtm_waker_stop(w);
    struct sigaction theirs;
    assert_int_equal(sigaction(SIGRTMAX - 1, NULL, &theirs), 0);
    assert_ptr_equal(theirs.sa_handler, on_theirs);
    signal(sig, SIG_DFL);
    signal(SIGRTMAX - 1, SIG_DFL);
}

/* With every signal it may take in use, it says so and starts nothing. */
static void test_no_free_signal(void **state)
{
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_theirs;
    for (int sig = SIGRTMIN + 1; sig <= SIGRTMAX; sig++)
        assert_int_equal(sigaction(sig, &sa, NULL), 0);
    char err[128] = "";
    assert_null(rtm_waker_start(pthread_self(), 100, err, sizeof(err)));
    assert_non_null(strstr(err, "signal"));
    for (int sig = SIGRTMIN + 1; sig <= SIGRTMAX; sig++)
        signal(sig, SIG_DFL);
}

/* Stopping returns at once, well before the next period. */
static void test_stop_is_prompt(void **state)
{
    (void)state;
    char err[128];
    struct rtm_waker *w = rtm_waker_start(pthread_self(), 60000, err, sizeof(err));
    assert_non_null(w);
    int sig = rtm_waker_signal(w);
    int64_t start = mono_ms();
    rtm_waker_stop(w);
    assert_true(mono_ms() - start < 1000);
    rtm_waker_stop(NULL);
    signal(sig, SIG_DFL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interrupts_a_sleeping_wait),
        cmocka_unit_test(test_leaves_taken_signals_alone),
        cmocka_unit_test(test_no_free_signal),
        cmocka_unit_test(test_stop_is_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
