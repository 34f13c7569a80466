/*
 * The mock JPush server from C: see jpush_mock.h.
 */
#include "jpush_mock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

extern char **environ;

#define MOCK_START_MS  15000 /* --tls makes a CA and a certificate first */
#define MOCK_STOP_MS   5000
#define MOCK_HTTP_MS   5000 /* a control request, beyond any wait it asks for */
#define MOCK_LOG_LINES 80
#define MAX_DOCS       256
#define MAX_OPTS       48

struct mock {
    int pid;
    int port;
    bool tls;
    char dir[256];
    char url[64];
    char ca_file[300];
    char log_path[300];
    char app_key[128];
    char master_secret[128];
    cJSON *docs[MAX_DOCS]; /* every list handed out, freed with the mock */
    int ndocs;
    const char *opts[MAX_OPTS];
};

/* ------------------------------------------------------------------------ */
/* process                                                                   */

static const char *python_path(void)
{
    const char *p = getenv("RTM_PYTHON");
    if (p && *p)
        return p;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    for (const char *s = path; *s;) {
        const char *colon = strchr(s, ':');
        size_t len = colon ? (size_t)(colon - s) : strlen(s);
        const char *cand = rt_fmt("%.*s/python3", (int)len, s);
        if (len > 0 && access(cand, X_OK) == 0)
            return cand;
        s += len + (colon ? 1 : 0);
    }
    FAIL("no python3 in PATH (set RTM_PYTHON)");
}

static const char *script_path(void)
{
    const char *p = getenv("RTM_MOCK_JPUSH");
    if (!p || !*p)
        FAIL("RTM_MOCK_JPUSH is not set: run the tests through ctest, or set it to "
             "tests/mock_jpush/mock_jpush.py");
    if (access(p, R_OK) != 0)
        FAIL("RTM_MOCK_JPUSH=%s: %s", p, strerror(errno));
    return p;
}

static void print_log_tail(const struct mock *m)
{
    FILE *f = fopen(m->log_path, "r");
    if (!f) {
        fprintf(stderr, "(no mock JPush log at %s)\n", m->log_path);
        return;
    }
    char *lines[MOCK_LOG_LINES] = {0};
    size_t n = 0;
    char buf[1024];
    while (fgets(buf, sizeof(buf), f)) {
        free(lines[n % MOCK_LOG_LINES]);
        lines[n % MOCK_LOG_LINES] = strdup(buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "----- mock JPush log %s (port %d)%s -----\n", m->log_path, m->port,
            n > MOCK_LOG_LINES ? ", last lines" : "");
    size_t first = n > MOCK_LOG_LINES ? n - MOCK_LOG_LINES : 0;
    for (size_t i = first; i < n; i++)
        fputs(lines[i % MOCK_LOG_LINES] ? lines[i % MOCK_LOG_LINES] : "?\n", stderr);
    fprintf(stderr, "----- end of mock JPush log -----\n");
    for (size_t i = 0; i < MOCK_LOG_LINES; i++)
        free(lines[i]);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void mock_free(struct mock *m)
{
    for (int i = 0; i < m->ndocs; i++)
        cJSON_Delete(m->docs[i]);
    if (!getenv("RTM_KEEP_DIRS"))
        remove_dir(m->dir);
    free(m);
    curl_global_cleanup();
}

static void at_end(void *ud, bool failed)
{
    struct mock *m = ud;
    if (!failed) {
        mock_stop(m);
        mock_free(m);
        return;
    }
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
    }
    print_log_tail(m);
    fprintf(stderr, "(mock JPush dir kept: %s)\n", m->dir);
}

static void spawn(struct mock *m)
{
    const char *py = python_path();
    char *argv[] = {(char *)py,
                    (char *)script_path(),
                    "--port",
                    "0",
                    "--state-dir",
                    m->dir,
                    "--app-key",
                    m->app_key,
                    "--master-secret",
                    m->master_secret,
                    m->tls ? "--tls" : NULL,
                    NULL};
    m->pid = rt_spawn_logged(py, argv, environ, m->log_path);
}

/* The port from DIR/port, once the mock has written it; 0 before. */
static int read_port(const struct mock *m)
{
    FILE *f = fopen(rt_fmt("%s/port", m->dir), "r");
    if (!f)
        return 0;
    int port = 0;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    return port > 0 && port < 65536 ? port : 0;
}

struct mock *mock_start(const struct mock_opts *o)
{
    struct mock *m = calloc(1, sizeof(*m));
    if (!m)
        FAIL("out of memory");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        FAIL("curl_global_init failed");
    m->tls = o && o->tls;
    snprintf(m->app_key, sizeof(m->app_key), "%s", o && o->app_key ? o->app_key : MOCK_APP_KEY);
    snprintf(m->master_secret, sizeof(m->master_secret), "%s",
             o && o->master_secret ? o->master_secret : MOCK_MASTER_SECRET);
    const char *tmp = getenv("TMPDIR");
    snprintf(m->dir, sizeof(m->dir), "%s/rtm-mock-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(m->dir))
        FAIL("mkdtemp %s: %s", m->dir, strerror(errno));
    snprintf(m->log_path, sizeof(m->log_path), "%s/mock.log", m->dir);
    snprintf(m->ca_file, sizeof(m->ca_file), "%s/ca.pem", m->dir);
    rt_at_end(at_end, m);
    spawn(m);
    int64_t deadline = now_mono_ms() + MOCK_START_MS;
    while ((m->port = read_port(m)) == 0) {
        int status;
        if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
            m->pid = 0;
            FAIL("the mock JPush exited during start-up (status 0x%x)", status);
        }
        if (now_mono_ms() > deadline)
            FAIL("the mock JPush did not write %s/port within %d ms", m->dir, MOCK_START_MS);
        rt_wait_ms(20);
    }
    snprintf(m->url, sizeof(m->url), "%s://127.0.0.1:%d", m->tls ? "https" : "http", m->port);
    return m;
}

void mock_stop(struct mock *m)
{
    if (m->pid <= 0)
        return;
    kill(m->pid, SIGTERM);
    int64_t deadline = now_mono_ms() + MOCK_STOP_MS;
    int status = 0;
    while (waitpid(m->pid, &status, WNOHANG) != m->pid) {
        if (now_mono_ms() > deadline) {
            kill(m->pid, SIGKILL);
            waitpid(m->pid, NULL, 0);
            m->pid = 0;
            FAIL("the mock JPush did not exit within %d ms of SIGTERM", MOCK_STOP_MS);
        }
        rt_wait_ms(10);
    }
    m->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("the mock JPush ended with status 0x%x on SIGTERM, expected exit 0", status);
}

int mock_port(const struct mock *m)
{
    return m->port;
}

const char *mock_url(const struct mock *m)
{
    return m->url;
}

const char *mock_ca_file(const struct mock *m)
{
    return m->ca_file;
}

const char *mock_app_key(const struct mock *m)
{
    return m->app_key;
}

const char *mock_master_secret(const struct mock *m)
{
    return m->master_secret;
}

/* ------------------------------------------------------------------------ */
/* control API                                                               */

struct body {
    char *p;
    size_t n;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;
    char *grown = realloc(b->p, b->n + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->n, data, n);
    b->n += n;
    grown[b->n] = '\0';
    b->p = grown;
    return n;
}

/* One control request; returns the response body (malloc'd), failing the
 * test unless it came back 200 within wait_ms + MOCK_HTTP_MS. */
static char *control(struct mock *m, const char *path, const char *post, int wait_ms)
{
    CURL *e = curl_easy_init();
    if (!e)
        FAIL("curl_easy_init failed");
    struct body b = {NULL, 0};
    char err[CURL_ERROR_SIZE] = "";
    const char *url = rt_fmt("%s%s", m->url, path);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(wait_ms + MOCK_HTTP_MS));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
    if (m->tls)
        curl_easy_setopt(e, CURLOPT_CAINFO, m->ca_file);
    if (post) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
    }
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK || status != 200) {
        const char *answer = rt_fmt("%s", b.p ? b.p : "");
        free(b.p);
        FAIL("mock JPush %s %s: %s (HTTP %ld) %s", post ? "POST" : "GET", url,
             rc == CURLE_OK ? "answered" : (err[0] ? err : curl_easy_strerror(rc)), status, answer);
    }
    if (!b.p)
        b.p = strdup("");
    return b.p;
}

static cJSON *keep(struct mock *m, char *text, const char *what)
{
    cJSON *doc = cJSON_Parse(text);
    if (!cJSON_IsArray(doc)) {
        const char *shown = rt_fmt("%.500s", text);
        free(text);
        cJSON_Delete(doc);
        FAIL("mock JPush %s: not a JSON list: %s", what, shown);
    }
    free(text);
    if (m->ndocs == MAX_DOCS)
        FAIL("mock JPush: more than %d request lists fetched in one case", MAX_DOCS);
    m->docs[m->ndocs++] = doc;
    return doc;
}

void mock_behaviour(struct mock *m, const char *json)
{
    free(control(m, "/_mock/behaviour", json, 0));
}

void mock_reset(struct mock *m)
{
    free(control(m, "/_mock/reset", "{}", 0));
}

cJSON *mock_requests(struct mock *m)
{
    return keep(m, control(m, "/_mock/requests", NULL, 0), "requests");
}

cJSON *mock_wait(struct mock *m, int count, int timeout_ms)
{
    const char *path = rt_fmt("/_mock/wait?count=%d&timeout_ms=%d", count, timeout_ms);
    return keep(m, control(m, path, NULL, timeout_ms), "wait");
}

void mock_dump(struct mock *m)
{
    char *text = control(m, "/_mock/requests", NULL, 0);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    fprintf(stderr, "push requests recorded by the mock JPush:\n");
    const cJSON *rec;
    cJSON_ArrayForEach(rec, doc)
    {
        char *body = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(rec, "body"));
        const cJSON *answer = cJSON_GetObjectItemCaseSensitive(rec, "answer");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(answer, "status");
        fprintf(stderr, "  #%lld at %lld ms -> %d: %.1500s\n",
                (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "seq")),
                rec_elapsed_ms(rec), cJSON_IsNumber(st) ? st->valueint : 0,
                body ? body : "(no body)");
        free(body);
    }
    cJSON_Delete(doc);
}

cJSON *mock_expect_at(const char *file, int line, struct mock *m, int count, int timeout_ms)
{
    cJSON *list = mock_wait(m, count, timeout_ms);
    int n = cJSON_GetArraySize(list);
    if (n < count) {
        mock_dump(m);
        rt_fail(file, line, "the mock JPush recorded %d push request(s) within %d ms, expected %d",
                n, timeout_ms, count);
    }
    return list;
}

static const char *const *plugin_opts(struct mock *m, const char *const *extra, bool ca)
{
    int n = 0;
    m->opts[n++] = rt_fmt("jpush_endpoint %s", m->url);
    m->opts[n++] = rt_fmt("jpush_app_key %s", m->app_key);
    m->opts[n++] = rt_fmt("jpush_master_secret %s", m->master_secret);
    if (m->tls && ca)
        m->opts[n++] = rt_fmt("jpush_ca_file %s", m->ca_file);
    for (; extra && *extra; extra++) {
        if (n == MAX_OPTS - 1)
            FAIL("mock_plugin_opts: too many options");
        m->opts[n++] = *extra;
    }
    m->opts[n] = NULL;
    return m->opts;
}

const char *const *mock_plugin_opts(struct mock *m, const char *const *extra)
{
    return plugin_opts(m, extra, true);
}

const char *const *mock_plugin_opts_no_ca(struct mock *m, const char *const *extra)
{
    return plugin_opts(m, extra, false);
}

/* ------------------------------------------------------------------------ */
/* records                                                                   */

const char *rec_header(const cJSON *rec, const char *name)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(rec, "headers"))
    {
        if (h->string && strcasecmp(h->string, name) == 0 && cJSON_IsString(h))
            return h->valuestring;
    }
    return NULL;
}

const cJSON *rec_body(const cJSON *rec)
{
    return cJSON_GetObjectItemCaseSensitive(rec, "body");
}

static const cJSON *android_extras(const cJSON *rec)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(rec_body(rec), "notification");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(n, "android");
    return cJSON_GetObjectItemCaseSensitive(a, "extras");
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : "";
}

const char *rec_kind(const cJSON *rec)
{
    return str_of(android_extras(rec), "rtm");
}

const char *rec_call_id(const cJSON *rec)
{
    return str_of(android_extras(rec), "id");
}

long long rec_elapsed_ms(const cJSON *rec)
{
    return (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "elapsed_ms"));
}

long long rec_time_ms(const cJSON *rec)
{
    return (long long)(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "time")) *
                       1000.0);
}

static bool rec_is(const cJSON *rec, const char *kind, const char *id)
{
    return (!kind || strcmp(rec_kind(rec), kind) == 0) &&
           (!id || strcmp(rec_call_id(rec), id) == 0);
}

int rec_count(const cJSON *list, const char *kind, const char *id)
{
    int n = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, list)
    {
        n += rec_is(rec, kind, id);
    }
    return n;
}

const cJSON *rec_find(const cJSON *list, const char *kind, const char *id)
{
    const cJSON *rec;
    cJSON_ArrayForEach(rec, list)
    {
        if (rec_is(rec, kind, id))
            return rec;
    }
    return NULL;
}

/* libcrypto's encoder: an oracle independent of libcurl's Basic auth,
 * which is what the plugin sends. */
static const char *base64(const char *in)
{
    size_t len = strlen(in);
    unsigned char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        FAIL("out of memory");
    EVP_EncodeBlock(out, (const unsigned char *)in, (int)len);
    const char *kept = rt_fmt("%s", (const char *)out);
    free(out);
    return kept;
}

static void fail_rec(const char *file, int line, const cJSON *rec, const char *what)
    __attribute__((noreturn));

static void fail_rec(const char *file, int line, const cJSON *rec, const char *what)
{
    char *text = cJSON_PrintUnformatted(rec);
    const char *shown = rt_fmt("%.3000s", text ? text : "(null)");
    free(text);
    rt_fail(file, line, "%s\n  in the recorded push request: %s", what, shown);
}

void rec_check_push(const char *file, int line, const struct mock *m, const cJSON *rec,
                    const char *kind, const char *id, ...)
{
    if (!rec)
        rt_fail(file, line, "no recorded push request (expected %s %s)", kind, id);
    if (strcmp(str_of(rec, "method"), "POST") != 0 || strcmp(str_of(rec, "path"), "/v3/push") != 0)
        fail_rec(file, line, rec, "expected POST /v3/push");
    const char *auth = rec_header(rec, "Authorization");
    const char *want = rt_fmt("Basic %s", base64(rt_fmt("%s:%s", m->app_key, m->master_secret)));
    if (!auth || strcmp(auth, want) != 0)
        fail_rec(file, line, rec, rt_fmt("expected Authorization: %s", want));
    const char *ctype = rec_header(rec, "Content-Type");
    if (!ctype || strcmp(ctype, "application/json") != 0)
        fail_rec(file, line, rec, "expected Content-Type: application/json");
    const cJSON *body = rec_body(rec);
    if (!cJSON_IsObject(body))
        fail_rec(file, line, rec, "expected a JSON object body");
    if (strcmp(str_of(body, "platform"), "all") != 0)
        fail_rec(file, line, rec, "expected platform \"all\"");
    if (strcmp(rec_kind(rec), kind) != 0 || strcmp(rec_call_id(rec), id) != 0)
        fail_rec(file, line, rec, rt_fmt("expected extras rtm \"%s\", id \"%s\"", kind, id));
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(body, "audience");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(aud, "registration_id");
    if (!cJSON_IsArray(ids))
        fail_rec(file, line, rec, "expected audience.registration_id to be a list");
    va_list ap;
    va_start(ap, id);
    int want_n = 0;
    for (const char *t; (t = va_arg(ap, const char *)) != NULL; want_n++) {
        int seen = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, ids)
        {
            seen += cJSON_IsString(it) && strcmp(it->valuestring, t) == 0;
        }
        if (seen != 1) {
            va_end(ap);
            fail_rec(
                file, line, rec,
                rt_fmt("expected token %s once in audience.registration_id, found %d", t, seen));
        }
    }
    va_end(ap);
    if (cJSON_GetArraySize(ids) != want_n)
        fail_rec(file, line, rec,
                 rt_fmt("expected %d token(s) in audience.registration_id, found %d", want_n,
                        cJSON_GetArraySize(ids)));
}

/* ------------------------------------------------------------------------ */
/* devices                                                                   */

const char *device_topic(const char *uid, const char *device)
{
    return rt_fmt("rtm/u/%s/devices/%s", uid, device);
}

const char *device_json(const char *platform, const char *token)
{
    return rt_fmt("{\"provider\":\"jpush\",\"platform\":\"%s\",\"token\":\"%s\"}", platform, token);
}

void device_register(struct client *c, const char *uid, const char *device, const char *platform,
                     const char *token)
{
    const char *json = device_json(platform, token);
    int rc = client_publish(c, device_topic(uid, device), json, (int)strlen(json), 1, true);
    CHECKF(rc >= 0 && rc < 0x80, "%s: registering device %s of %s: reason code 0x%02x (-1: none)",
           client_id(c), device, uid, (unsigned)rc);
}

void device_unregister(struct client *c, const char *uid, const char *device)
{
    int rc = client_publish(c, device_topic(uid, device), "", 0, 1, true);
    CHECKF(rc >= 0 && rc < 0x80, "%s: unregistering device %s of %s: reason code 0x%02x (-1: none)",
           client_id(c), device, uid, (unsigned)rc);
}

void wait_offline(struct client *obs, const char *uid)
{
    if (!client_wait_json(obs, rt_fmt("rtm/presence/%s", uid), WAIT_MS, "online", "false",
                          (char *)NULL)) {
        client_dump(obs);
        FAIL("%s: %s not shown offline within %d ms", client_id(obs), uid, WAIT_MS);
    }
}

struct client *open5(const struct broker *b, const char *id, const char *username)
{
    struct client_opts o = {.client_id = id, .username = username, .protocol = 5};
    return client_open_v(b, &o);
}

void client_flush(struct client *c)
{
    /* A fresh topic every time: Mosquitto 2.0.11 leaks (16 + the filter's
     * length) bytes whenever a client subscribes again to a filter it
     * already has, which the sanitizer build reports at exit. */
    const char *mark = rt_uniq("flush");
    const char *topic = rt_fmt("it/flush/%s/%s", client_id(c), mark);
    CHECK_EQ_INT(client_subscribe(c, topic, 1), 1);
    CHECK(client_publish_str(c, topic, mark, 1) >= 0);
    struct msg *m = client_wait_msg(c, topic, WAIT_MS);
    if (!m) {
        client_dump(c);
        FAIL("%s: its own flush message did not come back", client_id(c));
    }
}

void expect_secret_not_logged(const struct broker *b, const char *secret)
{
    CHECKF(!broker_log_contains(b, 0, secret),
           "the broker log holds the JPush master secret \"%s\" (SPEC 6.3: credentials never "
           "appear in logs)",
           secret);
}
