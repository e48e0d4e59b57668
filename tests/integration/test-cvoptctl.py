#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Integration tests of cvoptctl: the real cvoptctl binary against the real
cvoptd on a real socket, fed by the replay camera. One case per run:
test-cvoptctl.py CASE. Checks what a user sees: the human output, the
--json output, the exit codes and the hints.

Environment (set by meson): CVOPTD, CVOPTCTL, MKMODEL."""

import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CVOPTD = os.environ["CVOPTD"]
CVOPTCTL = os.environ["CVOPTCTL"]
MKMODEL = os.environ["MKMODEL"]
SRCDIR = os.path.dirname(os.path.abspath(__file__))
DATASET = "/usr/share/datasets/fashion-mnist"
TMP = tempfile.mkdtemp(prefix="cvoptctl-test-")
os.chmod(TMP, 0o755)  # cvoptctl run as nobody must reach the socket
SOCK = os.path.join(TMP, "cvoptd.sock")
NOBODY = 65534
SKIP = 77


def log(*args):
    print(*args, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    log("ok:", what)


def mkmodel(variant):
    path = os.path.join(TMP, "model%d.cvm" % variant)
    out = subprocess.run([MKMODEL, "mkmodel", path, str(variant)], check=True, stdout=subprocess.PIPE).stdout
    return path, out.decode().strip()


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout.decode()
        self.err = p.stderr.decode()

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "rc=%d stdout=%r stderr=%r" % (self.rc, self.out[:500], self.err[:500])


def ctl(*args, sock=SOCK, user=None, timeout=30):
    cmd = [CVOPTCTL, "--socket", sock] + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    r = Result(subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout))
    # Under the sanitizers, a report is a failure even when the exit code
    # says otherwise (UBSan goes on after printing).
    if "runtime error:" in r.err or "Sanitizer" in r.err:
        raise AssertionError("sanitizer report from cvoptctl %s:\n%s" % (" ".join(args), r.err))
    return r


class Daemon:
    def __init__(self, model, mode="0666", extra=""):
        self.conf = os.path.join(TMP, "cvoptd.conf")
        with open(self.conf, "w") as f:
            f.write("[camera]\ndevice = replay:fashion-mnist:test,fps=30,loop\n[model]\npath = %s\n"
                    "[server]\nsocket = %s\nmode = %s\n%s\n" % (model, SOCK, mode, extra))
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.pop("LISTEN_FDS", None)
        self.log_path = os.path.join(TMP, "cvoptd.log")
        self.proc = subprocess.Popen([CVOPTD, "--config", self.conf], env=e, stderr=open(self.log_path, "w"))
        deadline = time.monotonic() + 20
        # Ready for these tests: the socket answers and a first result exists.
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("cvoptd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("cvoptd did not publish a result in 20 s:\n" + self.log())
            if os.path.exists(SOCK):
                r = ctl("--json", "status")
                if r.rc == 0 and r.json()["last"] is not None and r.json()["fps"] > 0:
                    break
            time.sleep(0.05)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("cvoptd ignored SIGTERM")


def write_test_images(n):
    """The first n Fashion-MNIST test images as PGM files, and their labels."""
    with gzip.open(os.path.join(DATASET, "t10k-images-idx3-ubyte.gz")) as f:
        data = f.read(16 + n * 784)
    with gzip.open(os.path.join(DATASET, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = list(f.read(8 + n)[8:])
    paths = []
    for i in range(n):
        p = os.path.join(TMP, "item%d.pgm" % i)
        with open(p, "wb") as f:
            f.write(b"P5\n28 28\n255\n" + data[16 + i * 784:16 + (i + 1) * 784])
        paths.append(p)
    return paths, labels


# ---- cases ----

def case_commands():
    model0, id0 = mkmodel(0)
    model1, id1 = mkmodel(1)
    d = Daemon(model0)
    try:
        # status: human, one screen with every field the issue names.
        r = ctl("status")
        check(r.rc == 0, "status exits 0 (%r)" % r)
        lines = r.out.splitlines()
        check(len(lines) <= 24, "status fits one 80x24 screen (%d lines)" % len(lines))
        check(re.match(r"cvoptd \S+ \(pid %d\): running, up " % d.proc.pid, lines[0]) is not None,
              "status: version, pid, state, uptime (%s)" % lines[0])
        for key, pattern in [("camera", r"replay:fashion-mnist:test.*streaming"),
                             ("model", re.escape(id0) + r" \(" + re.escape(model0) + r"\)"),
                             ("backend", r"\S+"), ("fps", r"\d+\.\d"),
                             ("latency", r"p50 [\d.]+ [mu]?s, p99 [\d.]+ [mu]?s"),
                             ("clients", r"\d+"), ("last", r"#\d+ \S")]:
            m = [l for l in lines if l.startswith(key + ":")]
            check(m and re.search(pattern, m[0]), "status shows %s (%s)" % (key, m[0] if m else "missing"))
        # status --json is the protocol's object.
        s = ctl("--json", "status").json()
        check(s["model"]["id"] == id0 and s["state"] == "running" and s["pid"] == d.proc.pid,
              "status --json: model id, state, pid")
        check(15 <= s["fps"] <= 45, "status --json: fps near the replay's 30 (%.1f)" % s["fps"])

        # stats
        r = ctl("stats")
        check(r.rc == 0, "stats exits 0")
        m = re.search(r"frames:\s+(\d+) captured, (\d+) classified, (\d+) dropped, (\d+) errors", r.out)
        check(m is not None and int(m.group(2)) > 0, "stats: frame counters (%s)" % (m and m.group(0)))
        for stage in ["capture_wait", "preprocess", "inference", "publish", "total"]:
            check(re.search(r"^%s\s+[\d.]+ [mu]?s\s+[\d.]+ [mu]?s\s+[\d.]+ [mu]?s\s+\d+$" % stage, r.out, re.M),
                  "stats: latency row for %s" % stage)
        j = ctl("--json", "stats").json()
        check(j["frames"]["classified"] >= int(m.group(2)), "stats --json: counters only grow")
        check(j["latency_usec"]["inference"]["count"] > 0, "stats --json: latency histograms")
        # Global options may follow the command too.
        j2 = ctl("stats", "--json", "--timeout", "5").json()
        check(j2["frames"]["classified"] >= j["frames"]["classified"], "stats --json --timeout 5 (options after the command)")
        check(ctl("status", "--timeout").rc == 2, "status --timeout without a value: usage error")

        # metrics: Prometheus text, as the daemon returns it.
        r = ctl("metrics")
        check(r.rc == 0 and "# TYPE cvoptd_frames_classified_total counter\n" in r.out, "metrics: Prometheus text")
        m = re.search(r"^cvoptd_frames_classified_total (\d+)$", r.out, re.M)
        check(m and int(m.group(1)) > 0, "metrics: frames classified > 0")
        check('cvoptd_model_info{id="%s"' % id0 in r.out, "metrics: model id label")
        check(ctl("--json", "metrics").json()["text"].startswith("# HELP"), "metrics --json: {text}")

        # model
        r = ctl("model")
        labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot"]
        check(r.rc == 0 and ("model:    %s" % id0) in r.out, "model: id")
        check(all(re.search(r"^\s+%d  %s$" % (i, re.escape(l)), r.out, re.M) for i, l in enumerate(labels)),
              "model: every label, numbered")
        check(re.search(r"^input:\s+28x28 gray, resize stretch", r.out, re.M), "model: input spec")
        check("optimizer.method: \"none\"" in r.out and "optimizer.top1_after: 0.7" in r.out,
              "model: provenance summary (nested optimizer numbers)")
        j = ctl("--json", "model").json()
        check(j["labels"] == labels and j["input"]["width"] == 28, "model --json: labels and input")

        # last
        r = ctl("last")
        m = re.match(r"#(\d+) (.+?) (\d\.\d{3}) class=(\d+)", r.out)
        check(r.rc == 0 and m and m.group(2) == labels[int(m.group(4))], "last: seq, label, score (%s)" % r.out.strip())
        j = ctl("--json", "last").json()
        check(j["seq"] >= int(m.group(1)) and j["label"] in labels, "last --json: a result object")

        # subscribe: one result per line, seq without gaps.
        r = ctl("subscribe", "-n", "5")
        rows = [re.match(r"#(\d+) (.+?) (\d\.\d{3}) ", l) for l in r.out.splitlines()]
        check(r.rc == 0 and len(rows) == 5 and all(rows), "subscribe -n 5: five result lines (%r)" % r)
        seqs = [int(x.group(1)) for x in rows]
        check(seqs == list(range(seqs[0], seqs[0] + 5)), "subscribe: consecutive seq %s" % seqs)
        check(all(x.group(2) in labels for x in rows), "subscribe: labels of the model")
        r = ctl("--json", "subscribe", "-n", "3")
        events = [json.loads(l) for l in r.out.splitlines()]
        check(r.rc == 0 and len(events) == 3 and all(e["event"] == "result" and "truth" in e for e in events),
              "subscribe --json: raw protocol event lines")

        # classify: real images, real labels.
        paths, truth = write_test_images(10)
        r = ctl("classify", *paths)
        check(r.rc == 0, "classify exits 0 (%r)" % r)
        got = {}
        for l in r.out.splitlines():
            m = re.match(r"(\S+): #0 (.+?) (\d\.\d{3}) class=(\d+)", l)
            check(m is not None, "classify: one line per file (%s)" % l)
            got[m.group(1)] = int(m.group(4))
        correct = sum(got[p] == t for p, t in zip(paths, truth))
        check(len(got) == 10 and correct >= 6, "classify: %d/10 labels right (model is ~70%% accurate)" % correct)
        r = ctl("--json", "classify", paths[0], paths[1])
        js = [json.loads(l) for l in r.out.splitlines()]
        check([x["file"] for x in js] == paths[:2] and [x["class"] for x in js] == [got[paths[0]], got[paths[1]]],
              "classify --json: a result per file, same classes")
        garbage = os.path.join(TMP, "garbage.png")
        with open(garbage, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n not really")
        r = ctl("classify", paths[0], garbage, os.path.join(TMP, "missing.png"))
        check(r.rc == 1 and r.out.startswith(paths[0] + ": #0 "), "classify: good file still classified, exit 1")
        check(garbage in r.err and "missing.png: No such file" in r.err, "classify: each failure named (%s)" % r.err)

        # A file over the daemon's request limit (1 MiB of base64 by default):
        # it answers too-large and closes; cvoptctl still shows why.
        big = os.path.join(TMP, "big.png")
        with open(big, "wb") as f:
            f.write(os.urandom(900 * 1024))
        r = ctl("classify", big, paths[0])
        check(r.rc == 1 and "(too-large)" in r.err and "1048576" in r.err,
              "classify over the size limit: the daemon's too-large reason, exit 1 (%s)" % r.err.strip())
        check(r.out.startswith(paths[0] + ": #0 "), "the file after it is still classified (new connection)")
        check(ctl("--json", "status").json()["state"] == "running", "daemon unaffected by the oversized request")

        # pause / resume (root is admin).
        r = ctl("pause")
        check(r.rc == 0 and r.out == "paused\n", "pause")
        s = ctl("--json", "status").json()
        check(s["state"] == "paused" and s["paused"], "status shows paused")
        check("(paused)" in ctl("status").out, "human status shows (paused)")
        r = ctl("resume")
        check(r.rc == 0 and r.out == "resumed\n", "resume")
        check(ctl("--json", "status").json()["state"] == "running", "status running again")

        # reload: another model, then a corrupt one.
        cwd = os.getcwd()
        os.chdir(TMP)
        r = ctl("reload", os.path.basename(model1))  # relative: cvoptctl makes it absolute
        os.chdir(cwd)
        check(r.rc == 0 and r.out == "now serving model %s (was %s)\n" % (id1, id0), "reload PATH (%r)" % r)
        check(ctl("--json", "status").json()["model"]["id"] == id1, "status shows the new model id")
        bad = os.path.join(TMP, "bad.cvm")
        with open(model1, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0xff
        with open(bad, "wb") as f:
            f.write(data)
        r = ctl("reload", bad)
        check(r.rc == 1 and "reload:" in r.err and "(failed)" in r.err, "corrupt model: reload fails, exit 1 (%s)"
              % r.err.strip())
        check(ctl("--json", "status").json()["model"]["id"] == id1, "corrupt model: old model keeps serving")
        r = ctl("--json", "reload")
        check(r.rc == 0 and r.json()["id"] == id0 and r.json()["previous"] == id1, "reload (configured path) --json (%r)" % r)

        # --help for every command, usage errors exit 2.
        for cmd in ["status", "stats", "metrics", "model", "last", "watch", "subscribe", "classify", "reload",
                    "pause", "resume"]:
            r = ctl(cmd, "--help")
            check(r.rc == 0 and r.out.startswith("Usage: cvoptctl") and cmd in r.out.splitlines()[0],
                  "%s --help" % cmd)
        r = ctl("--help")
        check(r.rc == 0 and "Exit status: 0 success, 1 the request failed, 2 usage error, 3 cannot reach" in r.out,
              "--help documents the exit codes")
        for args in [[], ["frobnicate"], ["subscribe", "-n", "x"], ["reload", "a", "b"], ["status", "extra"],
                     ["classify"], ["watch", "-i", "0"], ["--timeout", "-1", "status"], ["--json", "watch"]]:
            r = ctl(*args)
            check(r.rc == 2 and r.err, "usage error exits 2: cvoptctl %s" % " ".join(args))
        check("is cvoptd running" not in d.log(), "daemon log clean")
    finally:
        d.stop()


def case_unreachable():
    r = ctl("status", sock=os.path.join(TMP, "nothing.sock"))
    check(r.rc == 3 and r.out == "", "no socket: exit 3 (%r)" % r)
    check("cannot reach cvoptd" in r.err and "nothing.sock" in r.err and "hint: is cvoptd running" in r.err,
          "no socket: hint names the socket and asks if cvoptd runs")
    # A socket file nobody listens on: a daemon that died.
    stale = os.path.join(TMP, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    r = ctl("--json", "stats", sock=stale)
    check(r.rc == 3 and "nobody listens" in r.err, "stale socket: exit 3, hint (%s)" % r.err.strip())
    for cmd in [["subscribe"], ["watch"], ["classify", "/dev/null"], ["reload"]]:
        r = ctl(*cmd, sock=stale)
        check(r.rc == 3, "%s: exit 3 when unreachable" % cmd[0])
    # CVOPTD_SOCKET is used without --socket.
    r = Result(subprocess.run([CVOPTCTL, "status"], env=dict(os.environ, CVOPTD_SOCKET=stale),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    check(r.rc == 3 and stale in r.err, "CVOPTD_SOCKET names the socket")

    # The daemon going away in the middle of a subscription.
    model0, _ = mkmodel(0)
    d = Daemon(model0)
    p = subprocess.Popen([CVOPTCTL, "--socket", SOCK, "subscribe"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    d.stop()
    out, err = p.communicate(timeout=10)
    check(p.returncode == 3 and b"closed the connection" in err and out.count(b"\n") > 3,
          "daemon stops under subscribe: results printed, then exit 3 (%d, %s)" % (p.returncode, err))

    # All connection slots taken: the daemon's refusal, with a hint.
    d = Daemon(model0, extra="max_clients = 1")
    try:
        p = subprocess.Popen([CVOPTCTL, "--socket", SOCK, "subscribe"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdout.readline()  # it holds the only slot now
        r = ctl("status")
        check(r.rc == 1 and "too many clients (unavailable)" in r.err and "max_clients" in r.err,
              "max_clients reached: exit 1, the daemon's reason and a hint (%s)" % r.err.strip())
        p.kill()
        p.wait()
    finally:
        d.stop()


def case_permission():
    if os.getuid() != 0:
        log("SKIP: needs root to run cvoptctl as another user")
        sys.exit(SKIP)
    model0, _ = mkmodel(0)
    d = Daemon(model0, mode="0600")
    try:
        r = ctl("status", user=NOBODY)
        check(r.rc == 3 and "Permission denied" in r.err and "hint: the socket's mode and group" in r.err,
              "socket 0600 of root, client nobody: exit 3 with a permission hint (%s)" % r.err.strip())
        os.chmod(SOCK, 0o666)
        r = ctl("status", user=NOBODY)
        check(r.rc == 0 and "running" in r.out, "once the mode lets it in, nobody may read status")
        r = ctl("subscribe", "-n", "2", user=NOBODY)
        check(r.rc == 0 and len(r.out.splitlines()) == 2, "nobody may subscribe")
        for cmd in [["reload"], ["pause"], ["resume"]]:
            r = ctl(*cmd, user=NOBODY)
            check(r.rc == 1 and "(permission-denied)" in r.err and "admin_uids" in r.err,
                  "non-admin %s refused: exit 1, hint at admin_uids (%s)" % (cmd[0], r.err.strip()))
        check(ctl("--json", "status").json()["state"] == "running", "daemon still running, not paused")
    finally:
        d.stop()


def case_python_client():
    """Runs exactly the Python client shown in docs/protocol.md."""
    with open(os.path.join(SRCDIR, "..", "..", "docs", "protocol.md")) as f:
        doc = f.read()
    section = doc[doc.index("## A Python client (stdlib only)"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    code = code[:code.index("```\n")]
    script = os.path.join(TMP, "client.py")
    with open(script, "w") as f:
        f.write(code)
    model0, _ = mkmodel(0)
    d = Daemon(model0)
    try:
        r = Result(subprocess.run(["/usr/bin/python3", "-I", script, SOCK, "8"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=30))
        rows = [l.split(" ") for l in r.out.splitlines() if not l.startswith("#")]
        check(r.rc == 0 and len(rows) == 8, "the documented client prints 8 results and exits 0 (%r)" % r)
        seqs = [int(x[0]) for x in rows]
        check(seqs == list(range(seqs[0], seqs[0] + 8)), "consecutive seq %s" % seqs)
        labels = set(ctl("--json", "model").json()["labels"])
        check(all(" ".join(x[1:-1]) in labels and 0 <= float(x[-1]) <= 1 for x in rows),
              "each line: a label of the model and a score")
        r = Result(subprocess.run(["/usr/bin/python3", "-I", script, os.path.join(TMP, "none.sock"), "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30))
        check(r.rc == 1 and "cannot reach cvoptd" in r.err, "the documented client reports a missing daemon")

        # The C example beside it, built against libcvopt-client.
        section = doc[doc.index("The same from C, with"):]
        code = section[section.index("```c\n") + len("```c\n"):]
        code = code[:code.index("```\n")]
        src = os.path.join(TMP, "client.c")
        with open(src, "w") as f:
            f.write(code)
        exe = os.path.join(TMP, "client-c")
        cc = subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                             "-I" + os.environ["CLIENT_INCLUDE"], src, os.environ["CLIENT_LIB"], "-ljansson",
                             "-o", exe] + os.environ.get("CLIENT_LDFLAGS", "").split(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(cc.returncode == 0, "the documented C client compiles with -Wall -Wextra -Werror (%s)"
              % cc.stdout.decode())
        p = subprocess.Popen([exe, SOCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        events = [json.loads(p.stdout.readline()) for _ in range(5)]
        check(all(e["event"] == "result" for e in events), "the C client prints result events")
        seqs = [e["seq"] for e in events]
        check(seqs == list(range(seqs[0], seqs[0] + 5)), "C client: consecutive seq %s" % seqs)
        d.stop()
        out, err = p.communicate(timeout=10)
        check(p.returncode == 1 and b"closed the connection" in err,
              "the C client reports the daemon going away (%s)" % err.decode().strip())
        return
    finally:
        d.stop()


TMUX_SERVER = ["cvoptctl-test-%d" % os.getpid()]


def tmux(*args):
    p = subprocess.run(["tmux", "-L", TMUX_SERVER[0]] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError("tmux %s: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout.decode()


def pane():
    return tmux("capture-pane", "-p", "-t", "w")


def wait_pane(pred, what, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        text = pane()
        if pred(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError("%s; the screen:\n%s" % (what, text))
        time.sleep(0.1)


def case_watch():
    if not shutil.which("tmux"):
        log("SKIP: no tmux")
        sys.exit(SKIP)
    model0, id0 = mkmodel(0)
    d = Daemon(model0)
    try:
        # Not a terminal: plain screens, -n of them.
        r = ctl("watch", "-n", "2", "-i", "0.2")
        check(r.rc == 0 and len(re.findall(r"^cvoptd ", r.out, re.M)) == 2 and "\033" not in r.out,
              "watch to a pipe: 2 plain screens, no escapes (%r)" % r)
        for key, name in [("q", "q"), ("C-c", "Ctrl-C")]:
            TMUX_SERVER[0] = "cvoptctl-test-%d-%s" % (os.getpid(), name)
            # A shell in an 80x24 terminal runs watch, then reports how it
            # left the terminal: exit code and the line discipline.
            shell = ("%s --socket %s watch -i 0.2; echo EXITED:$?; stty -a | tr ' ;' '\\n\\n' | "
                     "grep -x -e icanon -e echo | tr '\\n' ' '; echo; sleep 60" % (CVOPTCTL, SOCK))
            tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "24", shell)
            try:
                screen = wait_pane(lambda t: "SEQ" in t and re.search(r"^\d+ +\S", t, re.M), "watch shows results")
                lines = screen.split("\n")
                check(re.match(r"cvoptd \S+ +pid %d +running +up " % d.proc.pid, lines[0]),
                      "watch: header with pid, state, uptime (%s)" % lines[0])
                check(re.search(r"^model +%s +backend \S+" % id0, screen, re.M), "watch: model id and backend")
                check(re.search(r"^fps +\d+\.\d +frames \d+ classified", screen, re.M), "watch: fps and frames")
                check(re.search(r"^inference +[\d.]+ [mu]?s", screen, re.M), "watch: latency table")
                check("q quit" in screen, "watch: key help on the last row")
                check(all(len(l) <= 80 for l in lines), "watch: no line wider than 80 columns")
                check(tmux("display", "-p", "-t", "w", "#{alternate_on}").strip() == "1",
                      "watch runs on the alternate screen")
                seq1 = int(re.search(r"^(\d+) +\S", screen, re.M).group(1))
                screen = wait_pane(lambda t: int(re.search(r"^(\d+) +\S", t, re.M).group(1)) > seq1,
                                   "watch refreshes")
                check(True, "watch refreshes (newest seq grew past %d)" % seq1)
                tmux("send-keys", "-t", "w", key)
                screen = wait_pane(lambda t: "EXITED:" in t, "watch exits on %s" % name)
                check("EXITED:0" in screen, "watch exits 0 on %s" % name)
                check(tmux("display", "-p", "-t", "w", "#{alternate_on}").strip() == "0",
                      "%s: back on the normal screen" % name)
                check(tmux("display", "-p", "-t", "w", "#{cursor_flag}").strip() == "1",
                      "%s: cursor visible again" % name)
                check("LATENCY" not in screen, "%s: the watch screen is gone" % name)
                screen = wait_pane(lambda t: re.search(r"icanon echo|echo icanon", t), "terminal modes restored")
                check(True, "%s: canonical mode and echo restored" % name)
            finally:
                tmux("kill-server")

        # The daemon stops under watch: terminal restored, reason, exit 3.
        TMUX_SERVER[0] = "cvoptctl-test-%d-gone" % os.getpid()
        tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "24",
             "%s --socket %s watch -i 0.2; echo EXITED:$?; sleep 60" % (CVOPTCTL, SOCK))
        try:
            wait_pane(lambda t: "SEQ" in t, "watch runs")
            d.stop()
            screen = wait_pane(lambda t: "EXITED:" in t, "watch exits when the daemon stops")
            check("EXITED:3" in screen and "the daemon closed the connection" in screen,
                  "daemon gone: watch says so and exits 3")
            check(tmux("display", "-p", "-t", "w", "#{alternate_on}").strip() == "0" and
                  tmux("display", "-p", "-t", "w", "#{cursor_flag}").strip() == "1",
                  "daemon gone: normal screen and cursor restored")
        finally:
            tmux("kill-server")
    finally:
        d.stop()


def complete(script, *words):
    """COMPREPLY of the completion function in script for the words typed."""
    words = list(words)
    src = ("shopt -s extglob; cd %s; source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _%s; printf '%%s\\n' \"${COMPREPLY[@]}\""
           % (TMP, os.path.join(SRCDIR, "..", "..", "completions", script),
              " ".join("'%s'" % w for w in words), len(words) - 1, script))
    p = subprocess.run(["bash", "-c", src], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(p.returncode == 0, "completion runs: %s (%s)" % (" ".join(words), p.stderr.decode()))
    return sorted(x for x in p.stdout.decode().split("\n") if x)


def case_completion():
    for name in ["a.cvm", "b.onnx", "c.png", "d.txt"]:
        open(os.path.join(TMP, name), "w").close()
    os.mkdir(os.path.join(TMP, "sub"))
    check(complete("cvoptctl", "cvoptctl", "s") == ["stats", "status", "subscribe"], "cvoptctl s<TAB>: commands")
    check(complete("cvoptctl", "cvoptctl", "--socket", "/x", "--json", "re") == ["reload", "resume"],
          "commands after global options")
    check(complete("cvoptctl", "cvoptctl", "--j") == ["--json"], "global options")
    check(complete("cvoptctl", "cvoptctl", "subscribe", "-") == ["--count", "--help"], "subscribe options")
    check(complete("cvoptctl", "cvoptctl", "reload", "") == ["a.cvm", "sub"], "reload completes .cvm files")
    check(complete("cvoptctl", "cvoptctl", "classify", "") == ["c.png", "sub"], "classify completes images")
    check(complete("cvopt", "cvopt", "") == sorted("analyze bench convert eval info optimize run --help --version"
                                                    .split()), "cvopt commands")
    check(complete("cvopt", "cvopt", "optimize", "--quantize", "") == ["int8", "w4a8"], "cvopt --quantize values")
    check(complete("cvopt", "cvopt", "info", "") == ["a.cvm", "b.onnx", "c.png", "sub"], "cvopt completes models")


def case_manpages():
    """The man pages name every command and configuration key there is."""
    root = os.path.join(SRCDIR, "..", "..")
    with open(os.path.join(root, "docs", "man", "cvoptctl.1.scd")) as f:
        ctl_page = f.read()
    help_text = ctl("--help").out
    commands = re.findall(r"^  ([a-z]+)(?:,| |$)", help_text.split("Commands:")[1].split("Options:")[0], re.M)
    commands += ["resume"]
    check(len(commands) == 11, "cvoptctl --help lists 11 commands (%s)" % commands)
    for c in commands:
        check(("*%s*" % c) in ctl_page, "cvoptctl(1) describes %s" % c)
    for opt in re.findall(r"--[a-z]+", help_text.split("Options:")[1]):
        check(("*%s*" % opt) in ctl_page, "cvoptctl(1) describes %s" % opt)
    with open(os.path.join(root, "docs", "man", "cvoptd.conf.5.scd")) as f:
        conf_page = f.read()
    with open(os.path.join(root, "config", "cvoptd.conf")) as f:
        conf = f.read()
    section = None
    keys = []
    for line in conf.split("\n"):
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            section = m.group(1)
        m = re.match(r"^#(\w+) =", line)
        if m:
            keys.append((section, m.group(1)))
    check(len(keys) >= 20, "config/cvoptd.conf documents %d keys" % len(keys))
    for sec, key in keys:
        part = conf_page.split("# [%s]" % sec)[1].split("\n# ")[0] if ("# [%s]" % sec) in conf_page else ""
        check(re.search(r"\*%s\b" % key, part), "cvoptd.conf(5) describes [%s] %s" % (sec, key))
    r = subprocess.run([CVOPTD, "--help"], stdout=subprocess.PIPE).stdout.decode()
    with open(os.path.join(root, "docs", "man", "cvoptd.8.scd")) as f:
        d_page = f.read()
    for opt in re.findall(r"--[a-z-]+", r):
        check(("*%s*" % opt) in d_page, "cvoptd(8) describes %s" % opt)


CASES = {
    "manpages": case_manpages,
    "completion": case_completion,
    "commands": case_commands,
    "unreachable": case_unreachable,
    "permission": case_permission,
    "python-client": case_python_client,
    "watch": case_watch,
}

if __name__ == "__main__":
    try:
        CASES[sys.argv[1]]()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
