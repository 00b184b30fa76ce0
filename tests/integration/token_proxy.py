#!/usr/bin/env python3
"""A bearer-token realm in front of a docker-registry, for the registry
client's tests (docker-registry's own token auth needs a JWT-signing token
server). Python 3 standard library only; listens on 127.0.0.1.

Requests to /v2/... without a valid token get 401 with
  WWW-Authenticate: Bearer realm="http://127.0.0.1:PORT/token",service="test",scope="repository:REPO:ACTIONS"
GET /token?service=test&scope=... with the right basic credentials issues a
random token for that scope, valid for --expires-in seconds. Requests with
a token whose scope covers them are forwarded to the registry on
127.0.0.1:UPSTREAM (Host kept, so the registry's Location headers point
back here). One log line per event on stderr: "token issued ...",
"token refused ...", "challenge ...", "forward ...", "redirect ...", "stall ...".

--redirect-blobs answers blob GETs with a 307 to the registry itself (as
registries send blob GETs to object storage); --stall-blobs answers them
with a few bytes and then nothing, as a hung peer would.
"""

import argparse
import base64
import http.client
import http.server
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse

args = None
tokens = {}  # token -> (repository, set of actions, expiry)
lock = threading.Lock()


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def needed(method, path):
    """(repository, action) a request needs, or (None, None) for /v2/."""
    m = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/", path)
    if not m:
        return None, None
    return m.group(1), ("pull" if method in ("GET", "HEAD") else "push")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def token(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        expected = base64.b64encode(f"{args.username}:{args.password}".encode()).decode()
        if self.headers.get("Authorization", "") != "Basic " + expected:
            log(f"token refused {url.query}")
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            return self.reply(401, body.encode(), [("Content-Type", "application/json")])
        repo, actions = None, set()
        for scope in query.get("scope", []):
            parts = scope.split(":")
            if len(parts) == 3 and parts[0] == "repository":
                repo, actions = parts[1], set(parts[2].split(","))
        t = secrets.token_hex(16)
        with lock:
            tokens[t] = (repo, actions, time.time() + args.expires_in)
        log(f"token issued service={query.get('service', [''])[0]} scope={query.get('scope', [''])[0]}")
        body = json.dumps({"token": t, "expires_in": args.expires_in, "issued_at": "2024-01-01T00:00:00Z"})
        self.reply(200, body.encode(), [("Content-Type", "application/json")])

    def authorized(self, repo, action):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        with lock:
            entry = tokens.get(auth[len("Bearer "):])
        if entry is None or entry[2] < time.time():
            return False
        return repo is None or (entry[0] == repo and action in entry[1])

    def handle_any(self):
        if self.path.startswith("/token"):
            return self.token()
        body = self.body()
        repo, action = needed(self.command, urllib.parse.urlsplit(self.path).path)
        if not self.authorized(repo, action):
            challenge = f'Bearer realm="http://127.0.0.1:{args.port}/token",service="test"'
            if repo is not None:
                actions = "pull" if action == "pull" else "pull,push"
                challenge += f',scope="repository:{repo}:{actions}"'
            log(f"challenge {self.command} {self.path}")
            err = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
            return self.reply(401, err.encode(), [("WWW-Authenticate", challenge),
                                                  ("Content-Type", "application/json")])
        if self.command == "GET" and "/blobs/sha256:" in self.path and args.redirect_blobs:
            log(f"redirect {self.path}")
            location = f"http://127.0.0.1:{args.upstream}{self.path}"
            return self.reply(307, b"", [("Location", location)])
        if self.command == "GET" and "/blobs/sha256:" in self.path and args.stall_blobs:
            log(f"stall {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(60)
            return
        log(f"forward {self.command} {self.path}")
        conn = http.client.HTTPConnection("127.0.0.1", args.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--expires-in", type=int, default=60)
    p.add_argument("--redirect-blobs", action="store_true")
    p.add_argument("--stall-blobs", action="store_true")
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
