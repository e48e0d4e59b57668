#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Integration tests of cvoptd: the real daemon binary on a real socket,
fed by the replay source or the fake V4L2 camera (tests/fakecam, loaded
with LD_PRELOAD), spoken to in protocol v1 (docs/protocol.md) by a
stdlib-only client. One case per run: test-daemon.py CASE.

Environment (set by meson): CVOPTD, FAKECAM, HELPER."""

import base64
import gzip
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CVOPTD = os.environ["CVOPTD"]
FAKECAM = os.environ["FAKECAM"]
HELPER = os.environ["HELPER"]
SRCDIR = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp(prefix="cvoptd-test-")
os.chmod(TMP, 0o755)  # the non-admin client (uid 65534) must reach the socket
SOCK = os.path.join(TMP, "cvoptd.sock")


def log(*args):
    print(*args, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    log("ok:", what)


_models = {}


def model(variant=0):
    if variant not in _models:
        path = os.path.join(TMP, "model%d.cvm" % variant)
        subprocess.run([HELPER, "mkmodel", path, str(variant)], check=True, stdout=subprocess.PIPE)
        _models[variant] = path
    return _models[variant]


def ref_model():
    """The project's reference CNN (models/fmnist-ref.onnx) as a .cvm, made
    by `cvopt convert`; the nearest-centroid model where it is missing."""
    onnx = os.path.join(SRCDIR, "..", "..", "models", "fmnist-ref.onnx")
    if not os.path.exists(onnx) or not os.environ.get("CVOPT"):
        return model()
    if "ref" not in _models:
        path = os.path.join(TMP, "ref.cvm")
        subprocess.run([os.environ["CVOPT"], "convert", onnx, "-o", path], check=True, stdout=subprocess.DEVNULL)
        _models["ref"] = path
    return _models["ref"]


def cvopt_eval_top1(path, count):
    out = subprocess.run([os.environ["CVOPT"], "eval", path, "--data", "fashion-mnist:test", "--limit",
                          str(count), "--json"], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout
    return json.loads(out)["top1"] / 100


def reference(path, count):
    """Predicted class per item, as `cvopt eval` computes it (engine path)."""
    out = subprocess.run([HELPER, "eval", path, "fashion-mnist:test", str(count)], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    pred, truth = {}, {}
    for line in out.split("\n"):
        if line:
            i, p, t = map(int, line.split())
            pred[i], truth[i] = p, t
    return pred, truth


class Client:
    def __init__(self, path=SOCK, as_nobody=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.events = []  # events skipped while waiting for a response

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, **req):
        self.send_raw(json.dumps(req).encode() + b"\n")

    def recv(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message within %.1f s" % timeout)
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("daemon closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def response(self, timeout=10):
        """Next response, skipping events."""
        while True:
            msg = self.recv(timeout)
            if "event" not in msg:
                return msg
            self.events.append(msg)

    def request(self, cmd, **args):
        self.send(cmd=cmd, id=cmd, **args)
        r = self.response()
        check(r.get("id") == cmd and r.get("v") == 1, "%s: response carries id and v" % cmd)
        return r

    def close(self):
        self.sock.close()


def nobody_request(line):
    """Sends one line as uid 65534 (if we are root) and returns the response."""
    if os.getuid() != 0:
        c = Client()
        c.send_raw(line)
        r = c.response()
        c.close()
        return r
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            c = Client()
            c.send_raw(line)
            os.write(wfd, json.dumps(c.response()).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)


DAEMONS = []


class Daemon:
    def __init__(self, device, extra="", env=None, fakecam=False, model_path=None):
        self.conf = os.path.join(TMP, "cvoptd.conf")
        with open(self.conf, "w") as f:
            f.write("[camera]\ndevice = %s\n[model]\npath = %s\n[server]\nsocket = %s\nmode = 0666\n%s\n"
                    % (device, model_path or model(), SOCK, extra))
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.pop("LISTEN_FDS", None)
        if fakecam:
            e["LD_PRELOAD"] = FAKECAM
            # The fake camera is preloaded before the sanitizer runtime.
            e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        e.update(env or {})
        self.stderr_path = os.path.join(TMP, "cvoptd.log")
        self.stderr = open(self.stderr_path, "w")
        self.start_time = time.monotonic()
        self.proc = subprocess.Popen([CVOPTD, "--config", self.conf], env=e, stderr=self.stderr)
        DAEMONS.append(self.proc)
        deadline = time.monotonic() + 20
        while not os.path.exists(SOCK):
            if self.proc.poll() is not None:
                raise AssertionError("cvoptd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("cvoptd did not create its socket")
            time.sleep(0.01)

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self, limit=1.0):
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("cvoptd ignored SIGTERM")
        took = time.monotonic() - t0
        log("stopped in %.3f s" % took)
        check(rc == 0, "clean exit code 0 on SIGTERM (got %d)" % rc)
        check(took < limit, "SIGTERM stops the daemon within %.1f s (%.3f s)" % (limit, took))
        check(not os.path.exists(SOCK), "socket removed on exit")


def wait_results(c, n, timeout=20):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        msg = c.recv(max(0.1, deadline - time.monotonic()))
        if msg.get("event") == "result":
            out.append(msg)
    return out


def wait_running(c, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.request("status")["result"]["state"] == "running":
            return
        time.sleep(0.05)
    raise AssertionError("daemon not running after %d s" % timeout)


def wait_connected(c, n, timeout=10):
    """Until the daemon counts n connected clients (c among them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.request("stats")["result"]["clients"]["connected"] == n:
            return
        time.sleep(0.02)
    raise AssertionError("daemon does not count %d connected clients after %d s" % (n, timeout))


def contiguous(results):
    seqs = [r["seq"] for r in results]
    return all(b == a + 1 for a, b in zip(seqs, seqs[1:]))


def stats(c=None):
    own = c is None
    c = c or Client()
    r = c.request("stats")["result"]
    if own:
        c.close()
    return r


# ---- cases ----

def case_config():
    repo_conf = os.path.join(SRCDIR, "..", "..", "config", "cvoptd.conf")
    r = subprocess.run([CVOPTD, "--check-config", "--config", repo_conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check(r.returncode == 0, "the shipped config/cvoptd.conf passes --check-config")
    check(b"device = /dev/video0" in r.stdout, "--check-config prints the effective values")
    bad = os.path.join(TMP, "bad.conf")
    with open(bad, "w") as f:
        f.write("[camera]\nwidth = 640\nfps = fast\n")
    r = subprocess.run([CVOPTD, "--check-config", "--config", bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(r.returncode == 1 and b"bad.conf:3:" in r.stderr and b"fps" in r.stderr,
          "a bad value fails with file:line (%s)" % r.stderr.decode().strip())
    os.makedirs(os.path.join(TMP, "conf.d"))
    with open(bad, "w") as f:
        f.write("[camera]\nwidth = 640\n")
    with open(os.path.join(TMP, "conf.d", "50-x.conf"), "w") as f:
        f.write("[server]\nmax_clients = 7\nnope = 1\n")
    r = subprocess.run([CVOPTD, "--check-config", "--config", bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(r.returncode == 1 and b"conf.d/50-x.conf:3: unknown key" in r.stderr, "drop-in errors name the drop-in")
    # A daemon whose model does not load says so and exits non-zero.
    with open(bad, "w") as f:
        f.write("[model]\npath = %s/missing.cvm\n[server]\nsocket = %s\n" % (TMP, SOCK))
    os.remove(os.path.join(TMP, "conf.d", "50-x.conf"))
    r = subprocess.run([CVOPTD, "--config", bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    check(r.returncode == 1 and b"missing.cvm" in r.stderr, "a missing model is a clear start-up error")


def case_replay():
    ref, truth = reference(model(), 10000)
    d = Daemon("replay:fashion-mnist:test,fps=100,loop")
    c = Client()
    check(c.request("subscribe")["result"] == {"subscribed": True}, "subscribe")
    res = wait_results(c, 100)
    check(contiguous(res), "result seq has no gaps")
    agree = sum(ref[r["frame_seq"]] == r["class"] for r in res)
    check(agree >= 99, "replayed labels match the engine's on the same items (%d/100)" % agree)
    check(all(r["truth"] == truth[r["frame_seq"]] for r in res), "truth is the dataset label")
    r0 = res[0]
    check(set(r0["latency_usec"]) >= {"capture_wait", "preprocess", "inference", "total"}, "per-stage latency")
    check(len(r0["top"]) == 5 and r0["top"][0]["class"] == r0["class"], "top-5, best first")
    check(isinstance(r0["label"], str) and r0["backend"] and r0["model"], "label, backend and model id")
    st = c.request("status")["result"]
    check(st["state"] == "running" and st["camera"]["state"] == "streaming", "status: running, streaming")
    check(st["last"] is not None and st["model"]["id"] == r0["model"], "status: last result and model id")
    s = c.request("stats")["result"]
    check(s["frames"]["classified"] >= 100 and s["rss_bytes"] > 0, "stats counts frames and RSS")
    log("rss %.1f MB, overhead p50 %d us p99 %d us, inference p50 %d us, preprocess p50 %d us" % (
        s["rss_bytes"] / 1e6, s["latency_usec"]["overhead"]["p50"], s["latency_usec"]["overhead"]["p99"],
        s["latency_usec"]["inference"]["p50"], s["latency_usec"]["preprocess"]["p50"]))
    m = c.request("metrics")["result"]["text"]
    check("cvoptd_frames_classified_total " in m and 'quantile="0.99"' in m, "metrics in Prometheus text format")
    mi = c.request("model")["result"]
    check(mi["labels"][7] == "Sneaker" and mi["input"]["width"] == 28, "model: labels and input spec")
    last = c.request("last")["result"]
    check(last["seq"] >= 100 and "event" not in last, "last result")
    # classify: the first test image as a PGM, answered between frames.
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        f.read(16)
        pixels = f.read(28 * 28)
    pgm = b"P5\n28 28\n255\n" + pixels
    r = c.request("classify", image=base64.b64encode(pgm).decode())
    check(r["ok"] and r["result"]["class"] == ref[0], "classify gives the engine's class for image 0")
    r = c.request("classify", image="bm90IGFuIGltYWdl")
    check(not r["ok"] and r["error"]["code"] == "bad-request", "classify of a non-image: clear error")
    c.close()
    d.stop()


def case_protocol():
    d = Daemon("replay:fashion-mnist:test,fps=30,loop", "max_request_bytes = 4096\nmax_clients = 8\n")
    c = Client()
    wait_running(c)
    cases = [
        (b"garbage\n", "parse-error"),
        (b'{"cmd": "status"\n', "parse-error"),
        (b'{"cmd": "st\xffatus"}\n', "bad-encoding"),
        (b'{"cmd": "\xc0\xafx"}\n', "bad-encoding"),
        (b'[1, 2]\n', "bad-request"),
        (b'{"id": 3}\n', "bad-request"),
        (b'{"cmd": 5}\n', "bad-request"),
        (b'{"cmd": "status", "v": 2}\n', "bad-version"),
        (b'{"cmd": "statsu", "id": "x"}\n', "unknown-command"),
        (b'{"cmd": "classify"}\n', "bad-request"),
    ]
    for line, code in cases:
        c.send_raw(line)
        r = c.response()
        check(r["ok"] is False and r["error"]["code"] == code and r["error"]["message"],
              "%r -> %s" % (line[:30], code))
    check(c.request("status")["ok"], "the same connection still works after bad requests")
    # Pipelined requests are answered in order.
    c.send_raw(b'{"cmd":"status","id":1}\n{"cmd":"last","id":2}\n{"cmd":"model","id":3}\n')
    check([c.response()["id"] for _ in range(3)] == [1, 2, 3], "pipelined requests answered in order")
    # Non-admin admin commands.
    for cmd in ("reload", "pause", "resume"):
        r = nobody_request(json.dumps({"cmd": cmd, "id": 9}).encode() + b"\n")
        check(not r["ok"] and r["error"]["code"] == "permission-denied", "non-admin %s refused" % cmd)
    st = c.request("status")["result"]["state"]
    check(st == "running", "still running after refused admin commands (%s)" % st)
    # Oversized: an error, then the connection is closed.
    big = Client()
    big.send_raw(b'{"cmd":"status","pad":"' + b"x" * 5000)
    r = big.recv()
    check(not r["ok"] and r["error"]["code"] == "too-large", "oversized request -> too-large")
    try:
        big.recv(timeout=5)
        closed = False
    except (EOFError, ConnectionResetError):
        # A reset, when the unread rest of the request was still queued.
        closed = True
    check(closed, "oversized request: connection closed")
    # Truncated request then hang-up: nothing breaks.
    t = Client()
    t.send_raw(b'{"cmd": "sta')
    t.close()
    # The daemon must have reaped the two closed connections before the
    # count below means anything (on a loaded machine that takes a moment).
    wait_connected(c, 1)
    # max_clients: 8 connections in all.
    extra = [Client() for _ in range(7)]
    over = Client()
    r = over.recv()
    check(not r["ok"] and r["error"]["code"] == "unavailable", "connection beyond max_clients refused")
    for x in extra:
        x.close()
    over.close()
    wait_connected(c, 1)
    c2 = Client()
    check(c2.request("status")["ok"], "daemon keeps serving after all of it")
    s = c2.request("stats")["result"]
    check(s["frames"]["classified"] > 0 and s["clients"]["refused"] == 1, "frames flow; refusal counted")
    c2.close()
    c.close()
    d.stop()


def notify_socket():
    path = os.path.join(TMP, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.1)
    return s, path


def notify_collect(s, until, messages):
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        try:
            data = s.recv(4096).decode()
        except socket.timeout:
            continue
        messages.append((time.monotonic(), data))


def case_notify():
    s, path = notify_socket()
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "600000"}
    msgs = []
    model()  # made before the clock starts
    t0 = time.monotonic()
    d = Daemon("replay:fashion-mnist:test,fps=50,loop", env=env)
    notify_collect(s, 2.0, msgs)
    ready = [t for t, m in msgs if "READY=1" in m.split("\n")]
    check(ready, "READY=1 sent")
    log("time to READY: %.0f ms from spawn (model load + first frame classified)" % ((ready[0] - t0) * 1000))
    log("daemon says:", [x for x in d.log().split("\n") if "first frame" in x])
    check(any("STATUS=" in m and "fps" in m for _, m in msgs), "STATUS= carries fps and backend")
    wd = [t for t, m in msgs if "WATCHDOG=1" in m]
    check(len(wd) >= 4, "WATCHDOG=1 keeps coming while frames flow (%d in 2 s)" % len(wd))
    # Pause: the worker is alive, so the watchdog is still fed.
    c = Client()
    c.request("pause")
    msgs.clear()
    notify_collect(s, 1.0, msgs)
    check(any("WATCHDOG=1" in m for _, m in msgs), "watchdog fed while paused (legitimately waiting)")
    c.request("resume")
    msgs.clear()
    d.proc.send_signal(signal.SIGHUP)
    notify_collect(s, 1.5, msgs)
    seq = [m for _, m in msgs if "RELOADING=1" in m or "READY=1" in m.split("\n")]
    check(len(seq) >= 2 and "RELOADING=1" in seq[0] and "READY=1" in seq[1].split("\n"),
          "SIGHUP: RELOADING=1 then READY=1")
    check(c.request("stats")["result"]["model"]["reloads"] == 1, "SIGHUP reloaded the model")
    c.close()
    msgs.clear()
    d.stop()
    notify_collect(s, 0.3, msgs)
    check(any("STOPPING=1" in m for _, m in msgs), "STOPPING=1 on SIGTERM")

    # No camera at boot: READY=1 at once, with a status that says why.
    msgs.clear()
    t0 = time.monotonic()
    d = Daemon("/dev/video-absent-cvopt-test", env=env)
    notify_collect(s, 1.5, msgs)
    ready = [(t, m) for t, m in msgs if "READY=1" in m.split("\n")]
    check(ready and "waiting for camera" in ready[0][1], "absent camera: READY=1 with STATUS=waiting for camera")
    check(any("WATCHDOG=1" in m for _, m in msgs), "absent camera: watchdog fed while retrying")
    st = Client().request("status")["result"]
    check(st["state"] == "waiting-for-camera", "status says waiting-for-camera")
    d.stop()


def case_reload():
    good, other = model(0), model(1)
    corrupt = os.path.join(TMP, "corrupt.cvm")
    data = bytearray(open(good, "rb").read())
    data[len(data) // 2] ^= 0x55
    open(corrupt, "wb").write(bytes(data))
    d = Daemon("replay:fashion-mnist:test,fps=50,loop")
    c = Client()
    old_id = c.request("status")["result"]["model"]["id"]
    c.request("subscribe")
    r = c.request("reload", path=corrupt)
    check(not r["ok"] and r["error"]["code"] == "failed" and "corrupt.cvm" in r["error"]["message"],
          "reload of a corrupted model fails and says why: %s" % r["error"]["message"])
    res = wait_results(c, 10)
    check(all(x["model"] == old_id for x in res), "the old model keeps serving")
    check(c.request("status")["result"]["model"]["id"] == old_id, "status still names the old model")
    c.events.clear()
    r = c.request("reload", path=other)
    check(r["ok"] and r["result"]["previous"] == old_id and r["result"]["id"] != old_id, "reload of a good model")
    new_id = r["result"]["id"]
    check(c.request("status")["result"]["model"]["id"] == new_id, "status names the new model")
    check(any(m["event"] == "model" and m["id"] == new_id for m in c.events), "subscribers get a model event")
    res = wait_results(c, 5)
    check(all(x["model"] == new_id for x in res), "results now come from the new model")
    s = c.request("stats")["result"]["model"]
    check(s["reloads"] == 1 and s["reload_failures"] == 1, "reloads and failures counted")
    # Pause and resume.
    check(c.request("pause")["result"]["paused"] is True, "pause")
    time.sleep(0.3)
    n0 = stats(c)["frames"]["classified"]
    time.sleep(0.5)
    check(stats(c)["frames"]["classified"] == n0, "no frames classified while paused")
    check(c.request("resume")["result"]["paused"] is False, "resume")
    time.sleep(0.5)
    check(stats(c)["frames"]["classified"] > n0, "frames flow again after resume")
    c.close()
    d.stop()


def case_subscribers():
    fps = 40
    d = Daemon("replay:fashion-mnist:test,fps=%d,loop" % fps, "send_queue_messages = 8\n")
    time.sleep(1.0)

    def measure(seconds):
        a = stats()
        time.sleep(seconds)
        b = stats()
        return (b["frames"]["classified"] - a["frames"]["classified"]) / ((b["uptime_usec"] - a["uptime_usec"]) / 1e6)

    base = measure(3.0)
    log("fps with no subscribers: %.1f" % base)
    # The client that never reads: subscribes, then sleeps on its socket.
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(SOCK)
    slow.sendall(b'{"cmd":"subscribe"}\n')
    subs = [Client() for _ in range(50)]
    for s in subs:
        s.send(cmd="subscribe")
    seqs = {i: [] for i in range(50)}
    stop = threading.Event()

    def reader():
        sel = selectors.DefaultSelector()
        bufs = {}
        for i, s in enumerate(subs):
            s.sock.setblocking(False)
            sel.register(s.sock, selectors.EVENT_READ, i)
            bufs[i] = b""
        while not stop.is_set():
            for key, _ in sel.select(0.1):
                i = key.data
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                bufs[i] += data
                *lines, bufs[i] = bufs[i].split(b"\n")
                for line in lines:
                    m = json.loads(line)
                    if m.get("event") == "result":
                        seqs[i].append(m["seq"])
                    elif m.get("event") == "dropped":
                        seqs[i].append(-1)

    th = threading.Thread(target=reader)
    th.start()
    time.sleep(1.0)
    loaded = measure(3.0)
    stop.set()
    th.join()
    log("fps with 50 subscribers and a stuck client: %.1f" % loaded)
    check(abs(loaded - base) <= 0.1 * base, "fps unchanged within 10%% (%.1f vs %.1f)" % (loaded, base))
    check(all(len(v) >= 2 * fps and -1 not in v for v in seqs.values()), "every reading subscriber got results")
    check(all(all(b == a + 1 for a, b in zip(v, v[1:])) for v in seqs.values()),
          "no result lost for subscribers that read")
    # Its socket buffer (~200 KiB) fills first, then its 8-message queue.
    deadline = time.monotonic() + 30
    while True:
        s = stats()
        mine = [c for c in s["clients"]["list"] if c["subscribed"] and c["dropped"] > 0]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check(len(mine) == 1 and mine[0]["queued"] <= 8, "the stuck client's drops are counted (%s)" % mine)
    check(s["frames"]["classified"] - s["frames"]["dropped"] > 0 and d.proc.poll() is None, "pipeline unaffected")
    check(s["clients"]["subscribers"] == 51, "51 subscribers connected")
    slow.close()
    for x in subs:
        x.close()
    d.stop()


def fakecam_env(extra=None, count=None):
    start = os.path.join(TMP, "start")
    if os.path.exists(start):
        os.remove(start)
    env = {"FAKECAM_DEVICE": "/dev/video-fake0", "FAKECAM_START_FILE": start,
           "FAKECAM_LOG": os.path.join(TMP, "fakecam.log")}
    if count:
        env["FAKECAM_COUNT"] = str(count)
    env.update(extra or {})
    return env, start


def case_fakecam(fmt, offer=None, line_pad=0):
    """The real V4L2 path in format FMT: the daemon's labels on the fake
    camera's frames give the accuracy `cvopt eval` measures on the same
    images. OFFER: the formats the camera lists (FAKECAM_FORMATS; the
    daemon must pick FMT among them); LINE_PAD: bytes of padding the camera
    puts after each line (so bytesperline is not width * bytes per pixel)."""
    n, fps = 400, 40
    mpath = ref_model()
    log("model:", mpath)
    extra = {"FAKECAM_FPS": str(fps), "FAKECAM_LINE_PAD": str(line_pad)}
    if offer:
        extra["FAKECAM_FORMATS"] = offer
    env, start = fakecam_env(extra, n)
    d = Daemon("/dev/video-fake0", "[camera]\nformat = %s\n" % fmt, env=env, fakecam=True, model_path=mpath)
    c = Client()
    c.request("subscribe")
    deadline = time.monotonic() + 10
    while c.request("status")["result"]["camera"]["state"] != "streaming" and time.monotonic() < deadline:
        time.sleep(0.05)
    st = c.request("status")["result"]["camera"]
    check(st["state"] == "streaming" and fmt in st["description"] and "640x480" in st["description"],
          "camera negotiated 640x480 %s: %s" % (fmt, st["description"]))
    open(start, "w").close()
    res = []
    deadline = time.monotonic() + n / fps + 15
    while time.monotonic() < deadline:
        try:
            m = c.recv(timeout=2.0)
        except TimeoutError:
            break  # the camera has sent all its frames
        if m.get("event") == "result":
            res.append(m)
    s = c.request("stats")["result"]
    res += [m for m in c.events if m.get("event") == "result"]
    check(len(res) == s["frames"]["classified"] and contiguous(res) and res[0]["seq"] == 1,
          "no result lost: %d results, %d classified, seq contiguous" % (len(res), s["frames"]["classified"]))
    check(len(res) >= 0.9 * n, "most frames classified (%d of %d; %d dropped)" % (len(res), n, s["frames"]["dropped"]))
    ref, truth = reference(mpath, n)
    items = [r["frame_seq"] for r in res]
    acc_daemon = sum(r["class"] == truth[r["frame_seq"]] for r in res) / len(res)
    acc_ref = sum(ref[i] == truth[i] for i in items) / len(items)
    agree = sum(r["class"] == ref[r["frame_seq"]] for r in res) / len(res)
    log("%s: daemon accuracy %.2f%%, engine (cvopt eval path) %.2f%% on the same %d items, agreement %.2f%%" % (
        fmt, acc_daemon * 100, acc_ref * 100, len(items), agree * 100))
    check(abs(acc_daemon - acc_ref) <= 0.005, "accuracy within 0.5 points of the engine's")
    if os.environ.get("CVOPT"):
        top1 = cvopt_eval_top1(mpath, n)
        check(abs(top1 - sum(ref[i] == truth[i] for i in range(n)) / n) < 1e-9,
              "the reference is what `cvopt eval` measures (%.2f%%)" % (top1 * 100))
        if len(res) == n:
            check(abs(acc_daemon - top1) <= 0.005, "all %d frames: daemon %.2f%% vs cvopt eval %.2f%%" % (
                n, acc_daemon * 100, top1 * 100))
    lat = s["latency_usec"]
    log("%s: preprocess p50 %d p99 %d us, overhead p50 %d p99 %d us, inference p50 %d us, rss %.1f MB" % (
        fmt, lat["preprocess"]["p50"], lat["preprocess"]["p99"], lat["overhead"]["p50"], lat["overhead"]["p99"],
        lat["inference"]["p50"], s["rss_bytes"] / 1e6))
    c.close()
    d.stop()


def case_unplug():
    env, start = fakecam_env({"FAKECAM_FPS": "30", "FAKECAM_FAULTS": "unplug=40:1000"})
    d = Daemon("/dev/video-fake0", env=env, fakecam=True)
    pid = d.proc.pid
    c = Client()
    c.request("subscribe")
    open(start, "w").close()
    events, lost_at, resumed_at, after = [], None, None, 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and after < 30:
        m = c.recv(timeout=5)
        if m.get("event") == "camera":
            events.append(m["state"])
            if m["state"] == "lost":
                lost_at = time.monotonic()
        elif m.get("event") == "result" and lost_at:
            after += 1
            if resumed_at is None:
                resumed_at = time.monotonic()
    check(events == ["lost", "back"], "one camera lost and one camera back event (%s)" % events)
    gap = resumed_at - lost_at
    log("results resumed %.2f s after the loss (camera away 1.0 s)" % gap)
    check(gap <= 1.0 + 2.0, "results resume within 2 s of the camera's return")
    s = stats(c)
    check(s["camera"]["reconnects"] == 1 and s["camera"]["state"] == "streaming", "reconnect counted")
    check(d.proc.poll() is None and d.proc.pid == pid, "no restart")
    check(d.log().count("camera lost") == 1, "the loss is logged once")
    c.close()
    d.stop()


def case_faults():
    env, start = fakecam_env({"FAKECAM_FPS": "30", "FAKECAM_FAULTS": "short=10,eio=30,stall=60:2500"})
    d = Daemon("/dev/video-fake0", "[camera]\ntimeout_msec = 1000\n", env=env, fakecam=True)
    c = Client()
    c.request("subscribe")
    open(start, "w").close()
    events, results = [], 0
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        m = c.recv(timeout=5)
        if m.get("event") == "camera":
            events.append((m["state"], m.get("reason")))
        elif m.get("event") == "result":
            results += 1
            if len(events) >= 4 and events[-1][0] == "back" and results > 100:
                break
    log("events:", events)
    s = stats(c)
    check(s["frames"]["errors"] >= 1, "a short frame is counted as an error, not a crash")
    check(any(st == "lost" and "EIO" in (r or "") or "Input/output" in (r or "") for st, r in events),
          "EIO on DQBUF: camera lost, reported with the reason")
    check(any(st == "lost" and "no frame" in (r or "") for st, r in events), "a stalled camera is detected")
    check(events[-1][0] == "back" and results > 100, "results flow after every fault (%d)" % results)
    c.close()
    d.stop()

    # A camera without the configured format: the daemon keeps serving.
    env, start = fakecam_env({"FAKECAM_FORMATS": "mjpeg"})
    d = Daemon("/dev/video-fake0", "[camera]\nformat = yuyv\n", env=env, fakecam=True)
    time.sleep(0.5)
    st = Client().request("status")["result"]
    check(st["state"] == "waiting-for-camera" and "format" in (st["camera"]["reason"] or ""),
          "unsupported format reported: %s" % st["camera"]["reason"])
    d.stop()


def case_activation():
    """Socket activation: systemd-socket-activate holds the socket and starts
    cvoptd on the first connection, passing it as LISTEN_FDS."""
    conf = os.path.join(TMP, "act.conf")
    with open(conf, "w") as f:
        f.write("[camera]\ndevice = replay:fashion-mnist:test,fps=30,loop\n[model]\npath = %s\n"
                "[server]\nsocket = %s/unused.sock\n" % (model(), TMP))
    proc = subprocess.Popen(["systemd-socket-activate", "-l", SOCK, CVOPTD, "--config", conf],
                            stderr=subprocess.PIPE)
    DAEMONS.append(proc)
    deadline = time.monotonic() + 10
    while not os.path.exists(SOCK) and time.monotonic() < deadline:
        time.sleep(0.02)
    c = Client()
    r = c.request("status")
    check(r["ok"] and r["result"]["pid"] == proc.pid, "the activated daemon answers on the passed socket")
    check(not os.path.exists(os.path.join(TMP, "unused.sock")), "no socket of its own")
    c.close()
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=5) == 0, "clean exit")
    check(os.path.exists(SOCK), "the passed socket is left to its owner")


def case_doc_client():
    """The stdlib-only client printed in docs/protocol.md works as shown."""
    doc = open(os.path.join(SRCDIR, "..", "..", "docs", "protocol.md")).read()
    code = doc.split("## A Python client (stdlib only)")[1].split("```python\n")[1].split("```")[0]
    script = os.path.join(TMP, "client.py")
    open(script, "w").write(code)
    d = Daemon("replay:fashion-mnist:test,fps=50,loop")
    p = subprocess.Popen(["/usr/bin/python3", script, SOCK], stdout=subprocess.PIPE)
    lines = [p.stdout.readline().decode().split() for _ in range(5)]
    p.kill()
    p.wait()
    check(all(len(x) >= 3 and x[0].isdigit() for x in lines), "the documented client prints results: %s" % lines[0])
    d.stop()


def case_int8():
    """An int8 model from `cvopt optimize` serves through the same pipeline
    (its graph quantizes the float input itself)."""
    q = os.path.join(TMP, "int8.cvm")
    subprocess.run([os.environ["CVOPT"], "optimize", model(), "-o", q, "--calib", "fashion-mnist:train",
                    "--val", "fashion-mnist:test", "--val-limit", "200", "--train-sample", "0",
                    "--calib-count", "128"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ref, truth = reference(model(), 10000)
    d = Daemon("replay:fashion-mnist:test,fps=100,loop", model_path=q)
    c = Client()
    c.request("subscribe")
    res = wait_results(c, 200)
    agree = sum(ref[r["frame_seq"]] == r["class"] for r in res) / len(res)
    acc = sum(truth[r["frame_seq"]] == r["class"] for r in res) / len(res)
    log("int8 model: accuracy %.1f%%, agreement with the float model %.1f%%" % (acc * 100, agree * 100))
    check(agree >= 0.95, "int8 results agree with the float model's on >= 95% of frames")
    check(contiguous(res), "no result lost")
    c.close()
    d.stop()


def case_replay_formats():
    """Every frame format the preprocessing reads gives the engine's labels."""
    ref, _ = reference(model(), 10000)
    for fmt, size in (("nv12", "640x480"), ("grey", "320x240"), ("rgb24", "160x120"), ("yuyv", "28x28")):
        w, h = size.split("x")
        d = Daemon("replay:fashion-mnist:test,fps=100,loop",
                   "[camera]\nformat = %s\nwidth = %s\nheight = %s\n" % (fmt, w, h))
        c = Client()
        c.request("subscribe")
        res = wait_results(c, 60)
        agree = sum(ref[r["frame_seq"]] == r["class"] for r in res)
        check(agree >= 59, "%s %s: labels match the engine's (%d/60)" % (fmt, size, agree))
        c.close()
        d.stop()


ALL_FORMATS = "yuyv,mjpeg,nv12,grey,rgb24"

CASES = {
    "replay-formats": case_replay_formats,
    "int8": case_int8,
    "doc-client": case_doc_client,
    "activation": case_activation,
    "config": case_config,
    "replay": case_replay,
    "protocol": case_protocol,
    "notify": case_notify,
    "reload": case_reload,
    "subscribers": case_subscribers,
    "fakecam-yuyv": lambda: case_fakecam("yuyv"),
    "fakecam-mjpeg": lambda: case_fakecam("mjpeg"),
    # The formats of ISPs and industrial cameras, offered among the others.
    # NV12 comes in limited range with 64 bytes of padding a line (704 for
    # 640 pixels, in both planes), RGB24 with 64 too (1984 bytes a line),
    # GREY unpadded.
    "fakecam-nv12": lambda: case_fakecam("nv12", ALL_FORMATS, line_pad=64),
    "fakecam-grey": lambda: case_fakecam("grey", ALL_FORMATS),
    "fakecam-rgb24": lambda: case_fakecam("rgb24", ALL_FORMATS, line_pad=64),
    "unplug": case_unplug,
    "faults": case_faults,
}

if __name__ == "__main__":
    try:
        CASES[sys.argv[1]]()
    finally:
        for p in DAEMONS:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not os.environ.get("KEEP_TMP"):
            subprocess.run(["rm", "-rf", TMP])
        else:
            log("kept", TMP)
