#!/usr/bin/env python3
"""A local webhook receiver for trying `journey serve`'s `webhook` provider.

    JOURNEY_WEBHOOK_SECRET=whsec_... python3 tools/webhook_receiver.py 127.0.0.1:9000

Prints one line per request: whether its Standard Webhooks signature
verifies (HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed
with the base64-decoded part of the secret after `whsec_`), its
`webhook-id`, and its body. Answers 200 when the signature verifies, 401
otherwise. Python's standard library only.
"""

import base64
import hashlib
import hmac
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ.get("JOURNEY_WEBHOOK_SECRET", "")
KEY = base64.b64decode(SECRET.removeprefix("whsec_")) if SECRET else b""


def verified(headers, body):
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    given = [s.removeprefix("v1,") for s in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, g) for g in given)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = verified(self.headers, body)
        print("verified" if ok else "NOT VERIFIED", self.headers.get("webhook-id"),
              body.decode(errors="replace"), flush=True)
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000").rsplit(":", 1)
    HTTPServer((host, int(port)), Receiver).serve_forever()
