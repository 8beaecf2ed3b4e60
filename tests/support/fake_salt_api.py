#!/usr/bin/env python3
"""A fake salt-api (rest_cherrypy) for loopback tests, replaying salt/TRANSCRIPTS.md item 7.

Binds 127.0.0.1 on an ephemeral port and prints the port on stdout (one line).
Environment:
  FAKE_SALT_MINIONS  comma-separated minion ids (default "m1,m2,m3")
  FAKE_SALT_DOWN     comma-separated ids of stopped minions (match, never return)
  FAKE_SALT_USER / FAKE_SALT_PASSWORD / FAKE_SALT_EAUTH  accepted credentials
  FAKE_SALT_TLS_CERT / FAKE_SALT_TLS_KEY  PEM files: serve HTTPS instead of HTTP
Endpoints: POST /login, POST / (client local, local_async; test.ping, cmd.run_all with env, cwd,
runas and timeout (the "<cmd> : Timed out after N seconds" return), saltutil.term_job,
saltutil.kill_job: a signalled job never returns), GET /jobs/<jid>.
SIGUSR1 forgets every issued token (as a salt-api restart does), so the next request gets
401; the server then prints "tokens-expired" on stdout.
"""
import fnmatch
import getpass
import http.server
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

MINIONS = [m for m in os.environ.get("FAKE_SALT_MINIONS", "m1,m2,m3").split(",") if m]
DOWN = set(m for m in os.environ.get("FAKE_SALT_DOWN", "").split(",") if m)
USER = os.environ.get("FAKE_SALT_USER", "saltpeter")
PASSWORD = os.environ.get("FAKE_SALT_PASSWORD", "saltpeter-secret")
EAUTH = os.environ.get("FAKE_SALT_EAUTH", "sharedsecret")

LOCK = threading.Lock()
TOKENS = set()
JOBS = {}        # jid -> {"info": {...}, "results": {minion: ret}}
RUNNING = {}     # (jid, minion) -> Popen
SIGNALLED = set()  # (jid, minion) that got term_job/kill_job: they never return
EXPIRE_PENDING = threading.Event()

HTML_401 = """<!DOCTYPE html PUBLIC
"-//W3C//DTD XHTML 1.0 Transitional//EN"
"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html>
<head>
    <meta http-equiv="Content-Type" content="text/html; charset=utf-8"></meta>
    <title>401 Unauthorized</title>
</head>
    <body>
        <h2>401 Unauthorized</h2>
        <p>Could not authenticate using provided credentials</p>
    </body>
</html>
"""

NO_RETURN = ("Minion did not return. [No response]\nThe minions may not have all finished running and any "
             "remaining minions will return upon completion. To look up the return data for this job later, "
             "run the following command:\n\nsalt-run jobs.lookup_jid {jid}")


def new_jid():
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "%06d" % (uuid.uuid4().int % 1000000)


def match(tgt, tgt_type):
    """(matched known minions, unknown listed ids)"""
    if tgt_type == "list":
        ids = tgt if isinstance(tgt, list) else [t for t in str(tgt).split(",") if t]
        return [m for m in MINIONS if m in ids], [i for i in ids if i not in MINIONS]
    return [m for m in MINIONS if fnmatch.fnmatchcase(m, str(tgt))], []


def run_all(jid, minion, arg, kwarg):
    """cmd.run_all as Salt does it: through the shell, env overlaid, trailing newline stripped."""
    runas = kwarg.get("runas")
    if runas and runas != getpass.getuser():
        return "ERROR: User '%s' is not available" % runas
    cwd = kwarg.get("cwd") or os.path.expanduser("~")
    if not os.path.isdir(cwd):
        return "ERROR: Specified cwd '%s' either not absolute or does not exist" % cwd
    env = dict(os.environ)
    extra = {str(k): str(v) for k, v in (kwarg.get("env") or {}).items()}
    env.update(extra)
    # Every fake minion is this same host; a real minion has its own /tmp, so give each one its
    # own default wrapper lock file unless the job sets one (in $TMPDIR, as the local transport).
    if "SP_JOB_NAME" in extra and "SP_LOCKFILE" not in extra:
        tmp = env.get("TMPDIR") if env.get("TMPDIR", "").startswith("/") else "/tmp"
        env["SP_LOCKFILE"] = os.path.join(tmp, "sp_wrapper_%s.%s.lock" % (extra["SP_JOB_NAME"], minion))
    cmd = arg[0] if arg else ""
    proc = subprocess.Popen(["/bin/bash", "-c", cmd], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    with LOCK:
        RUNNING[(jid, minion)] = proc
    timeout = kwarg.get("timeout")
    try:
        out, err = proc.communicate(timeout=int(timeout) if timeout else None)
    except subprocess.TimeoutExpired:
        # cmd.run_all timeout=N (TRANSCRIPTS item 3): the tree is killed, stdout replaced.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        with LOCK:
            RUNNING.pop((jid, minion), None)
        return {"stdout": "%s : Timed out after %d seconds" % (cmd, int(timeout)), "stderr": "", "retcode": 1,
                "pid": proc.pid}
    with LOCK:
        RUNNING.pop((jid, minion), None)
        signalled = (jid, minion) in SIGNALLED
    if proc.returncode < 0 or signalled:
        return None  # terminated: Salt never records a return for it (item 5)
    return {"pid": proc.pid, "retcode": proc.returncode,
            "stdout": out.decode(errors="replace").rstrip("\n"),
            "stderr": err.decode(errors="replace").rstrip("\n")}


def signal_job(minion, arg, sig):
    jid = str(arg[0]) if arg else ""
    with LOCK:
        proc = RUNNING.get((jid, minion))
        if proc is not None:
            SIGNALLED.add((jid, minion))
    if proc is None:
        return "No process with jid %s" % jid  # wording not recorded; unused by the transport
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    return "Signal %d sent to job %s at pid %d" % (int(sig), jid, proc.pid)


def execute(minion, fun, arg, kwarg, jid):
    if fun == "test.ping":
        return True
    if fun == "cmd.run_all":
        return run_all(jid, minion, arg, kwarg)
    if fun == "saltutil.term_job":
        return signal_job(minion, arg, signal.SIGTERM)
    if fun == "saltutil.kill_job":
        return signal_job(minion, arg, signal.SIGKILL)
    return "'%s' is not available." % fun


def run_local(chunk):
    matched, unknown = match(chunk.get("tgt", ""), chunk.get("tgt_type", "glob"))
    if not matched:
        return {}
    fun = chunk.get("fun")
    arg = chunk.get("arg") or []
    kwarg = chunk.get("kwarg") or {}
    jid = new_jid()
    out = {}
    threads = []

    def one(m):
        out[m] = execute(m, fun, arg, kwarg, jid)

    for m in matched:
        if m in DOWN:
            out[m] = False  # client=local reports a stopped minion as false
            continue
        t = threading.Thread(target=one, args=(m,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    for m in list(out):
        if out[m] is None:
            del out[m]
    for u in unknown:
        out[u] = NO_RETURN.format(jid=jid)
    return out


def run_local_async(chunk):
    matched, _ = match(chunk.get("tgt", ""), chunk.get("tgt_type", "glob"))
    if not matched:
        return {}
    jid = new_jid()
    fun = chunk.get("fun")
    arg = chunk.get("arg") or []
    kwarg = chunk.get("kwarg") or {}
    with LOCK:
        JOBS[jid] = {"info": {"jid": jid, "Function": fun, "Arguments": arg, "Target": chunk.get("tgt"),
                              "Target-type": chunk.get("tgt_type", "glob"), "User": USER, "Minions": matched,
                              "StartTime": time.strftime("%Y, %b %d %H:%M:%S.000000", time.gmtime())},
                     "results": {}}

    def one(m):
        ret = execute(m, fun, arg, kwarg, jid)
        if ret is not None:
            with LOCK:
                JOBS[jid]["results"][m] = ret

    for m in matched:
        if m not in DOWN:
            threading.Thread(target=one, args=(m,), daemon=True).start()
    return {"jid": jid, "minions": matched}


def job_level(ret):
    """info[0].Result.<id>: the return with the job-level retcode and success (items 3 and 7)."""
    if not isinstance(ret, dict):
        return {"return": ret, "retcode": 1, "success": False, "out": "nested"}
    if ret.get("retcode") == 1 and " : Timed out after " in ret.get("stdout", ""):
        return {"return": ret, "retcode": 0, "success": True}  # Salt counts a timeout as success
    return {"return": ret, "retcode": ret.get("retcode", 0), "success": ret.get("retcode") == 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_salt_api: " + (fmt % args) + "\n")

    def send(self, status, body, content_type="application/json", extra=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode() if n else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            return json.loads(raw) if raw else None
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}

    def authorized(self):
        with LOCK:
            return self.headers.get("X-Auth-Token") in TOKENS

    def do_POST(self):
        try:
            data = self.body()
        except ValueError:
            return self.send(400, "<html><body><p>Bad JSON</p></body></html>", "text/html;charset=utf-8")
        if self.path == "/login":
            d = data if isinstance(data, dict) else {}
            if d.get("username") != USER or d.get("password") != PASSWORD or d.get("eauth") != EAUTH:
                return self.send(401, HTML_401, "text/html;charset=utf-8")
            token = uuid.uuid4().hex
            with LOCK:
                TOKENS.add(token)
            now = time.time()
            ret = {"token": token, "expire": now + 43200, "start": now, "user": USER, "eauth": EAUTH,
                   "perms": [".*", "@jobs", "@runner", "@wheel"]}
            return self.send(200, json.dumps({"return": [ret]}), extra={"X-Auth-Token": token})
        if self.path != "/":
            return self.send(404, "<html><body><p>Not found</p></body></html>", "text/html;charset=utf-8")
        if not self.authorized():
            return self.send(401, HTML_401, "text/html;charset=utf-8")
        chunks = data if isinstance(data, list) else [data]
        results = []
        for chunk in chunks:
            client = chunk.get("client")
            if client == "local":
                results.append(run_local(chunk))
            elif client == "local_async":
                results.append(run_local_async(chunk))
            else:
                return self.send(400, "<html><body><p>Client disabled: '%s'.</p></body></html>" % client,
                                 "text/html;charset=utf-8")
        self.send(200, json.dumps({"return": results}))

    def do_GET(self):
        if not self.path.startswith("/jobs/"):
            return self.send(404, "<html><body><p>Not found</p></body></html>", "text/html;charset=utf-8")
        if not self.authorized():
            return self.send(401, HTML_401, "text/html;charset=utf-8")
        jid = self.path[len("/jobs/"):]
        with LOCK:
            job = JOBS.get(jid)
            if job is None:
                return self.send(200, json.dumps({"info": [{"jid": jid, "Result": {}}], "return": [{}]}))
            results = dict(job["results"])
            info = dict(job["info"])
        info["Result"] = {m: job_level(r) for m, r in results.items()}
        self.send(200, json.dumps({"info": [info], "return": [results]}))


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    cert, key = os.environ.get("FAKE_SALT_TLS_CERT"), os.environ.get("FAKE_SALT_TLS_KEY")
    if cert and key:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)

    def expire(_sig, _frame):
        with LOCK:
            TOKENS.clear()
        print("tokens-expired", flush=True)

    signal.signal(signal.SIGUSR1, expire)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
