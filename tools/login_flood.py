#!/usr/bin/env python3
"""How long an admin waits for `GET /api/v1/me` while bogus logins flood tafel.

Usage (from the repository root, with a release build):

    python3 tools/login_flood.py [TAFEL_BINARY] [--flooders 24] [--probes 40]

Starts TAFEL_BINARY (default target/release/tafel) on a free port in a temporary
directory (SQLite), then runs FLOODERS threads that post wrong passwords to
`/api/v1/login` without pause, and meanwhile times PROBES calls of `GET /api/v1/me` with
the first start's admin token. Prints the probes' median, p90 and maximum latency and how
many logins the flood sent (and how they were answered). Only the standard library.
"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, token=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    args = sys.argv[1:]
    binary = "target/release/tafel"
    flooders, probes = 24, 40
    i = 0
    while i < len(args):
        if args[i] == "--flooders":
            flooders = int(args[i + 1])
            i += 2
        elif args[i] == "--probes":
            probes = int(args[i + 1])
            i += 2
        else:
            binary = args[i]
            i += 1
    binary = os.path.abspath(binary)
    work = tempfile.mkdtemp(prefix="tafel-flood-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAFEL_")}
    env.update(TAFEL_LISTEN=f"127.0.0.1:{port}", TAFEL_PUBLIC_URL=base, TAFEL_LOG_LEVEL="error")
    server = subprocess.Popen([binary, "serve"], cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        token = None
        for line in server.stdout:
            m = re.search(r"(tafel_\S+)", line)
            if m:
                token = m.group(1)
                break
        for _ in range(200):
            try:
                if request("GET", f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        stop = threading.Event()
        answers = {}
        lock = threading.Lock()

        def flood(n):
            k = 0
            while not stop.is_set():
                try:
                    status, _ = request("POST", f"{base}/api/v1/login",
                                        {"email": f"nobody{n}-{k}@flood.test", "password": "wrong"})
                except OSError:
                    status = "error"
                with lock:
                    answers[status] = answers.get(status, 0) + 1
                k += 1

        threads = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(flooders)]
        for t in threads:
            t.start()
        time.sleep(2)
        latencies = []
        for _ in range(probes):
            t0 = time.monotonic()
            status, _ = request("GET", f"{base}/api/v1/me", token=token)
            latencies.append((time.monotonic() - t0) * 1000)
            assert status == 200, status
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=70)
        latencies.sort()
        p90 = latencies[int(len(latencies) * 0.9) - 1]
        print(f"binary: {binary}")
        print(f"flood: {flooders} clients posting wrong passwords, answers: {answers}")
        print(f"GET /api/v1/me under the flood ({probes} probes): median {statistics.median(latencies):.1f} ms, "
              f"p90 {p90:.1f} ms, max {latencies[-1]:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
