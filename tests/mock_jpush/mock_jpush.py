#!/usr/bin/env python3
"""A mock of the JPush v3 push API, on 127.0.0.1 only, for the mosquitto-rtm tests.

Tests start it as a subprocess and talk to it over real HTTP(S), so the plugin's
HTTP worker (libcurl) is exercised end to end:

    python3 mock_jpush.py --port 0 --state-dir DIR [--tls]
                          [--app-key K --master-secret S]

It binds 127.0.0.1 (port 0 picks a free port) and, once listening, writes the
port to DIR/port (atomically: wait for the file, then read it). With --tls it
first makes a throwaway test CA (DIR/ca.pem) and a certificate for 127.0.0.1
and localhost signed by it, with the openssl CLI, and serves HTTPS; clients
verify it with DIR/ca.pem. SIGTERM or SIGINT stops it at once, even while
answers are being held back.

POST /v3/push checks `Authorization: Basic base64(app_key:master_secret)` (401,
JPush error 1004, when wrong), `Content-Type: application/json` and that the body
is a JSON object (400, error 1003), records the request and answers with the
current behaviour, by default 200 {"sendno":"0","msg_id":"<1, 2, ...>"}.

Control API on the same server (no auth), under /_mock/:
    POST /_mock/behaviour  one object or a list of them:
        {"mode": "ok"|"status", "status": 429, "body": {...} or "text",
         "headers": {"Retry-After": "2"}, "delay_ms": 300, "hang": true,
         "drop": true, "times": 1}
        An entry with "times" is queued and answers that many push requests;
        queued entries are used in order. An entry without "times" becomes the
        answer once the queue is empty. "status" without "body" gets JPush's
        body for it (400: 1011, 401: 1004, 429: 2002, 5xx: 1000). "delay_ms"
        holds the answer back; "hang" never answers (until the client closes
        the connection or the mock stops); "drop" closes the connection without
        an answer (a network error for the client).
    GET  /_mock/behaviour  the queue and the default answer
    GET  /_mock/requests   the JSON list of recorded push requests
    GET  /_mock/wait?count=N&timeout_ms=T
                           waits until N push requests were recorded or T ms
                           passed, then returns the list
    POST /_mock/reset      forgets requests and behaviours, restarts msg_id at 1

Every POST /v3/push is recorded, rejected ones too, as
{"seq", "method", "path", "headers", "body" (parsed JSON or null), "time" (Unix
seconds), "elapsed_ms" (since the mock started, monotonic), "answer"}.
One line per request goes to stderr.
"""

import argparse
import base64
import collections
import dataclasses
import json
import os
import secrets
import select
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
PUSH_PATH = "/v3/push"
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
IDLE_TIMEOUT_S = 60
HANDSHAKE_TIMEOUT_S = 10

AUTH_FAILED = {"error": {"code": 1004, "message": "Authen failed"}}
DEFAULT_ERROR_BODIES = {
    400: {"error": {"code": 1011, "message": "cannot find user by this audience"}},
    401: AUTH_FAILED,
    429: {"error": {"code": 2002, "message": "Request times out of limit"}},
}
SERVER_ERROR_BODY = {"error": {"code": 1000, "message": "Server Internal error"}}
BEHAVIOUR_KEYS = {"mode", "status", "body", "headers", "delay_ms", "hang", "drop", "times"}

OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = mosquitto-rtm mock JPush
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def log(message):
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    print(f"mock_jpush {stamp} {message}", file=sys.stderr, flush=True)


def to_json_bytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# --- behaviours ---------------------------------------------------------------


@dataclasses.dataclass
class Behaviour:
    """How to answer a push request that passed the checks."""

    status: int = 200
    body: object = None  # None: the default body for `status`
    headers: dict = dataclasses.field(default_factory=dict)
    delay_ms: int = 0
    hang: bool = False
    drop: bool = False
    times: int | None = None  # None: until replaced

    def describe(self):
        return dataclasses.asdict(self)

    def error_body(self):
        if self.body is not None:
            return self.body
        if self.status >= 500:
            return SERVER_ERROR_BODY
        return DEFAULT_ERROR_BODIES.get(
            self.status, {"error": {"code": 1003, "message": "mock error"}})


def check_type(obj, key, types, what):
    """Raises ValueError unless obj[key], when present, is of `types` (JSON
    true/false count as booleans only, not as integers)."""
    if key not in obj:
        return
    value = obj[key]
    if isinstance(value, bool) != (types is bool) or not isinstance(value, types):
        raise ValueError(f"{key} must be {what}")


def parse_behaviour(obj):
    """Validates one control object and returns its Behaviour (ValueError when wrong)."""
    if not isinstance(obj, dict):
        raise ValueError("a behaviour is a JSON object")
    unknown = set(obj) - BEHAVIOUR_KEYS
    if unknown:
        raise ValueError(f"unknown keys: {sorted(unknown)}")
    check_type(obj, "status", int, "an integer")
    check_type(obj, "delay_ms", int, "an integer")
    check_type(obj, "times", int, "an integer")
    check_type(obj, "hang", bool, "true or false")
    check_type(obj, "drop", bool, "true or false")
    check_type(obj, "headers", dict, "an object")
    check_type(obj, "body", (dict, list, str), "an object, a list or a string")
    mode = obj.get("mode", "status" if "status" in obj else "ok")
    if mode == "ok" and obj.get("status", 200) != 200:
        raise ValueError('mode "ok" answers 200; use mode "status"')
    if mode == "status" and "status" not in obj:
        raise ValueError('mode "status" needs "status"')
    if mode not in ("ok", "status"):
        raise ValueError('mode must be "ok" or "status"')
    status = obj.get("status", 200)
    if not 200 <= status <= 599:
        raise ValueError("status must be 200-599")
    if obj.get("delay_ms", 0) < 0 or obj.get("times", 1) < 1:
        raise ValueError("delay_ms must be >= 0 and times >= 1")
    headers = {str(k): str(v) for k, v in obj.get("headers", {}).items()}
    return Behaviour(status=status, body=obj.get("body"), headers=headers,
                     delay_ms=obj.get("delay_ms", 0), hang=obj.get("hang", False),
                     drop=obj.get("drop", False), times=obj.get("times"))


# --- shared state -------------------------------------------------------------


class MockState:
    """Recorded requests and queued behaviours, guarded by one condition variable."""

    def __init__(self):
        self.cond = threading.Condition()
        self.started = time.monotonic()
        self.reset()

    def reset(self):
        with self.cond:
            self.records = []
            self.queue = collections.deque()  # [Behaviour, answers left]
            self.default = Behaviour()
            self.next_msg_id = 1

    def add_behaviour(self, behaviour):
        with self.cond:
            if behaviour.times is None:
                self.default = behaviour
            else:
                self.queue.append([behaviour, behaviour.times])

    def take_behaviour(self):
        with self.cond:
            if not self.queue:
                return self.default
            entry = self.queue[0]
            entry[1] -= 1
            if entry[1] == 0:
                self.queue.popleft()
            return entry[0]

    def describe_behaviours(self):
        with self.cond:
            return {"queue": [dict(b.describe(), left=left) for b, left in self.queue],
                    "default": self.default.describe()}

    def new_msg_id(self):
        with self.cond:
            msg_id = self.next_msg_id
            self.next_msg_id += 1
            return str(msg_id)

    def record(self, entry):
        with self.cond:
            entry["seq"] = len(self.records) + 1
            self.records.append(entry)
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.records)

    def wait_for(self, count, timeout_s):
        with self.cond:
            self.cond.wait_for(lambda: len(self.records) >= count, timeout_s)
            return list(self.records)

    def elapsed_ms(self):
        return int((time.monotonic() - self.started) * 1000)


# --- HTTP ---------------------------------------------------------------------


class MockHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as JPush and libcurl use it
    timeout = IDLE_TIMEOUT_S
    server_version = "mock-jpush/1"

    # One line per request, written by log_outcome; the base class's own
    # per-response line is suppressed.
    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, format, *args):  # noqa: A002 (base class signature)
        log(f"{self.client_address[0]}:{self.client_address[1]} {format % args}")

    def log_outcome(self):
        log(f"{self.command} {self.path} -> {self.outcome}")

    def do_GET(self):
        self.dispatch({"/_mock/requests": self.get_requests,
                       "/_mock/wait": self.get_wait,
                       "/_mock/behaviour": self.get_behaviour})

    def do_POST(self):
        self.dispatch({PUSH_PATH: self.post_push,
                       "/_mock/behaviour": self.post_behaviour,
                       "/_mock/reset": self.post_reset})

    def dispatch(self, routes):
        self.outcome = "?"
        url = urlsplit(self.path)
        route = routes.get(url.path)
        try:
            if route is not None:
                route(parse_qs(url.query))
            elif url.path == PUSH_PATH:
                self.read_body()
                self.send_json(405, {"error": {"code": 1001, "message": "Only support HTTP Post"}})
            else:
                self.read_body()
                self.send_json(404, {"error": {"code": 1000, "message": "no such path"}})
        finally:
            self.log_outcome()

    # --- plumbing

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def read_chunked(self):
        data = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def send_json(self, status, obj, headers=None):
        is_text = isinstance(obj, str)
        data = obj.encode("utf-8") if is_text else to_json_bytes(obj)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if is_text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.outcome = str(status)

    def read_json(self):
        """The request body as JSON, or None after answering 400."""
        try:
            return json.loads(self.read_body().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.send_json(400, {"error": f"body is not JSON: {exc}"})
            return None

    # --- the JSON API

    def post_push(self, _query):
        state = self.server.state
        raw = self.read_body()
        entry = {"method": self.command, "path": self.path, "headers": self.header_dict(),
                 "body": None, "time": time.time(), "elapsed_ms": state.elapsed_ms()}
        body, rejection = self.check_push(raw)
        entry["body"] = body
        if rejection is not None:
            status, error, reason = rejection
            entry["answer"] = {"status": status, "rejected": reason}
            state.record(entry)
            self.send_json(status, error)
            self.outcome += f" ({reason})"
            return
        behaviour = state.take_behaviour()
        entry["answer"] = behaviour.describe()
        state.record(entry)
        self.answer(behaviour, body)

    def header_dict(self):
        headers = {}
        for name, value in self.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    def check_push(self, raw):
        """(the body parsed as JSON or None, None or (status, error body, reason))."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        if self.headers.get("Authorization", "") != self.server.expected_auth:
            return body, (401, AUTH_FAILED, "auth")
        if self.headers.get_content_type() != "application/json":
            return body, (400, {"error": {"code": 1003, "message":
                                          "Content-Type must be application/json"}},
                          "content-type")
        if not isinstance(body, dict):
            return body, (400, {"error": {"code": 1003, "message":
                                          "the body must be a JSON object"}}, "body")
        return body, None

    def answer(self, behaviour, push_body):
        if behaviour.drop:
            self.close_connection = True
            self.outcome = "dropped the connection"
            return
        if behaviour.hang:
            self.hang()
            return
        if behaviour.delay_ms and self.server.stopping.wait(behaviour.delay_ms / 1000):
            self.close_connection = True
            self.outcome = "mock stopping"
            return
        if behaviour.status == 200:
            body = behaviour.body if behaviour.body is not None else self.ok_body(push_body)
        else:
            body = behaviour.error_body()
        self.send_json(behaviour.status, body, behaviour.headers)
        if behaviour.delay_ms:
            self.outcome += f" after {behaviour.delay_ms} ms"

    def ok_body(self, push_body):
        options = push_body.get("options")
        sendno = options.get("sendno", 0) if isinstance(options, dict) else 0
        return {"sendno": str(sendno), "msg_id": self.server.state.new_msg_id()}

    def hang(self):
        """Never answers: waits, without polling, until the client closes the
        connection (or sends anything more) or the mock stops."""
        started = time.monotonic()
        select.select([self.connection, self.server.stop_read_fd], [], [])
        self.close_connection = True
        waited = int((time.monotonic() - started) * 1000)
        self.outcome = f"hung, no answer; released after {waited} ms"

    # --- the control API

    def post_behaviour(self, _query):
        obj = self.read_json()
        if obj is None:
            return
        try:
            behaviours = [parse_behaviour(o) for o in (obj if isinstance(obj, list) else [obj])]
        except ValueError as exc:
            self.send_json(400, {"error": str(exc)})
            return
        for behaviour in behaviours:
            self.server.state.add_behaviour(behaviour)
        self.send_json(200, self.server.state.describe_behaviours())

    def post_reset(self, _query):
        self.read_body()
        self.server.state.reset()
        self.send_json(200, {"reset": True})

    def get_behaviour(self, _query):
        self.send_json(200, self.server.state.describe_behaviours())

    def get_requests(self, _query):
        self.send_json(200, self.server.state.snapshot())

    def get_wait(self, query):
        try:
            count = int(query.get("count", ["1"])[0])
            timeout_ms = int(query.get("timeout_ms", ["5000"])[0])
        except ValueError:
            self.send_json(400, {"error": "count and timeout_ms must be integers"})
            return
        records = self.server.state.wait_for(count, max(timeout_ms, 0) / 1000)
        self.send_json(200, records)
        self.outcome += f" ({len(records)} of {count} requests)"


class MockServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1 with an optional TLS layer whose
    handshake runs on the connection's own thread, never on the accept loop."""

    daemon_threads = True
    block_on_close = False
    # The listen backlog (socketserver's default is 5): a burst of connections
    # (the benchmark's, with RTM_BENCH_MOCK=python) must not overflow it, or
    # the kernel drops SYNs and clients retry them only after a second.
    request_queue_size = 1024

    def __init__(self, port, expected_auth, tls_context):
        self.state = MockState()
        self.expected_auth = expected_auth
        self.tls_context = tls_context
        self.stopping = threading.Event()
        self.stop_read_fd, self.stop_write_fd = os.pipe()
        super().__init__((HOST, port), MockHandler)

    def server_bind(self):
        # HTTPServer.server_bind would call socket.getfqdn(): a DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name = HOST
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log(f"{client_address[0]}:{client_address[1]} TLS handshake failed: {exc}")
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        log(f"{client_address[0]}:{client_address[1]} connection error: {sys.exc_info()[1]!r}")

    def stop(self):
        """Releases held-back answers, stops the accept loop, closes the socket."""
        self.stopping.set()
        os.write(self.stop_write_fd, b"x")
        with self.state.cond:
            self.state.cond.notify_all()
        self.shutdown()
        self.server_close()


# --- TLS ----------------------------------------------------------------------


def run_openssl(*args):
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_test_pki(state_dir):
    """Writes a throwaway CA (ca.pem, ca.key) and a server certificate for
    127.0.0.1/localhost signed by it (server.pem, server.key) into state_dir."""
    def path(name):
        return os.path.join(state_dir, name)

    with open(path("openssl.cnf"), "w", encoding="ascii") as f:
        f.write(OPENSSL_CONFIG)
    ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run_openssl("req", "-x509", "-config", path("openssl.cnf"), "-extensions", "ca_ext",
                *ec_key, "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "7",
                "-subj", "/CN=mosquitto-rtm mock JPush test CA")
    run_openssl("req", "-new", "-config", path("openssl.cnf"), *ec_key,
                "-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=127.0.0.1")
    run_openssl("x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"),
                "-CAkey", path("ca.key"), "-set_serial", str(secrets.randbits(63)), "-days", "7",
                "-sha256", "-extfile", path("openssl.cnf"), "-extensions", "server_ext",
                "-out", path("server.pem"))
    return path("server.pem"), path("server.key")


def make_tls_context(state_dir):
    cert, key = make_test_pki(state_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# --- main ---------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Mock JPush v3 push API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", required=True, help="where port (and TLS files) go")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a test CA")
    parser.add_argument("--app-key", default="test-app-key")
    parser.add_argument("--master-secret", default="test-master-secret")
    return parser.parse_args(argv)


def write_port_file(state_dir, port):
    tmp = os.path.join(state_dir, "port.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, os.path.join(state_dir, "port"))


def remove_port_file(state_dir):
    try:
        os.unlink(os.path.join(state_dir, "port"))
    except FileNotFoundError:
        pass


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    remove_port_file(args.state_dir)
    credentials = f"{args.app_key}:{args.master_secret}".encode("utf-8")
    expected_auth = "Basic " + base64.b64encode(credentials).decode("ascii")
    tls_context = make_tls_context(args.state_dir) if args.tls else None
    server = MockServer(args.port, expected_auth, tls_context)
    # Every thread started from here on inherits the blocked mask, so the
    # signals reach only sigwait() below.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    port = server.server_address[1]
    write_port_file(args.state_dir, port)
    log(f"listening on {'https' if args.tls else 'http'}://{HOST}:{port}")
    signum = signal.sigwait(STOP_SIGNALS)
    log(f"stopping on {signal.Signals(signum).name}")
    server.stop()
    remove_port_file(args.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
