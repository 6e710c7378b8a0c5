"""A real HTTP server on loopback that receives webhooks (monitoring/webhooks.py) in tests."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class WebhookServer:
    """A local HTTP server answering POSTs with the next status of `statuses` (the last one
    repeats) and keeping each request body."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.bodies = []
        self.raw_bodies = []  # as received: what a signature covers
        self.requests = []  # (path, headers)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                raw = self.rfile.read(length)
                owner.raw_bodies.append(raw)
                owner.bodies.append(json.loads(raw))
                owner.requests.append((self.path, self.headers))
                status = owner.statuses.pop(0) if len(owner.statuses) > 1 else owner.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
