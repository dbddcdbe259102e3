#!/usr/bin/env python3
"""The demo service: serves the release it runs from, /health, and /metrics.

Started by a hook with PORT set; uses only Python's standard library. /metrics counts the
requests it answered by status code and release (`demo_http_requests_total{code,sha}`), for
Prometheus to scrape and release-agent's canary analysis to judge. A release that holds a
file DEMO_ERRORS answers every second request to / with 500 while /health stays 200: the bug
a health check cannot see and the analysis can.
"""
import http.server
import itertools
import json
import os
import pathlib
import threading

HERE = pathlib.Path(__file__).resolve().parent
PORT = int(os.environ.get("PORT", "8080"))


def read(name: str) -> str:
    try:
        return (HERE / name).read_text().strip()
    except OSError:
        return ""


COUNTS = {"200": 0, "500": 0}
LOCK = threading.Lock()
REQUESTS = itertools.count()


def metrics() -> bytes:
    sha = read("REVISION")
    lines = [
        "# HELP demo_http_requests_total Requests to / by status code and release.",
        "# TYPE demo_http_requests_total counter",
    ]
    with LOCK:
        for code, count in sorted(COUNTS.items()):
            lines.append(f'demo_http_requests_total{{code="{code}",sha="{sha}"}} {count}')
    return ("\n".join(lines) + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        kind = "text/plain"
        if self.path == "/health":
            healthy = read("BUILD_INFO") != "" and os.environ.get("DEMO_UNHEALTHY") is None
            body = json.dumps({"ok": healthy, "revision": read("REVISION")}).encode()
            kind = "application/json"
            self.send_response(200 if healthy else 503)
        elif self.path == "/metrics":
            body = metrics()
            kind = "text/plain; version=0.0.4"
            self.send_response(200)
        else:
            failing = (HERE / "DEMO_ERRORS").exists() and next(REQUESTS) % 2 == 1
            code = "500" if failing else "200"
            with LOCK:
                COUNTS[code] += 1
            body = f"release-agent demo {read('VERSION')} ({read('REVISION')[:12]})\n".encode()
            self.send_response(int(code))
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
