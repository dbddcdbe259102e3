#!/usr/bin/env python3
"""The demo service: serves the release it runs from, and /health.

Started by a hook with PORT set; uses only Python's standard library.
"""
import http.server
import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
PORT = int(os.environ.get("PORT", "8080"))


def read(name: str) -> str:
    try:
        return (HERE / name).read_text().strip()
    except OSError:
        return ""


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            healthy = read("BUILD_INFO") != "" and os.environ.get("DEMO_UNHEALTHY") is None
            body = json.dumps({"ok": healthy, "revision": read("REVISION")}).encode()
            self.send_response(200 if healthy else 503)
        else:
            body = f"release-agent demo {read('VERSION')} ({read('REVISION')[:12]})\n".encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json" if self.path == "/health" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
