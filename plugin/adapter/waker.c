/*
 * The waker (see rtm_waker.h): one thread, one real-time signal.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtm_waker.h"

/* The signals tried, from the top of the real-time range down: libraries
 * that take one usually take SIGRTMIN upwards. */
#define SIGNALS_TRIED 8

struct rtm_waker {
    pthread_t thread;
    pthread_t target;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    bool stopping;       /* under lock */
    int period_ms;
    int sig;
};

static void on_wake_signal(int sig)
{
    (void)sig; /* interrupting the broker's wait is the whole point */
}

/* Takes the first real-time signal nobody handles. */
static int take_signal(void)
{
    for (int sig = SIGRTMAX - 1; sig > SIGRTMAX - 1 - SIGNALS_TRIED && sig > SIGRTMIN; sig--) {
        struct sigaction old;
        if (sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_wake_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: the broker's epoll_wait must return */
        if (sigaction(sig, &sa, NULL) == 0)
            return sig;
    }
    return -1;
}

static struct timespec deadline_after(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *waker_main(void *arg)
{
    struct rtm_waker *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        struct timespec at = deadline_after(w->period_ms);
        while (!w->stopping && pthread_cond_timedwait(&w->cond, &w->lock, &at) != ETIMEDOUT)
            ;
        if (!w->stopping)
            pthread_kill(w->target, w->sig);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static int init_sync(struct rtm_waker *w)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        pthread_cond_destroy(&w->cond);
        return -1;
    }
    return 0;
}

struct rtm_waker *rtm_waker_start(pthread_t target, int period_ms, char *err, size_t err_len)
{
    struct rtm_waker *w = calloc(1, sizeof(*w));
    if (!w || init_sync(w) != 0) {
        free(w);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    w->target = target;
    w->period_ms = period_ms;
    if ((w->sig = take_signal()) < 0) {
        snprintf(err, err_len, "every real-time signal from SIGRTMAX-1 down is taken");
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, waker_main, w) != 0) {
        signal(w->sig, SIG_IGN);
        snprintf(err, err_len, "cannot start a thread");
        goto fail;
    }
    return w;
fail:
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return NULL;
}

int rtm_waker_signal(const struct rtm_waker *w)
{
    return w->sig;
}

void rtm_waker_stop(struct rtm_waker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    /* Discards a signal still pending: no handler of an unloaded plugin. */
    signal(w->sig, SIG_IGN);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
