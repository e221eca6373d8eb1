"""A real SMTP server for the delivery tests and bench: aiosmtpd, writing
one JSON line per accepted email (parsed by Python's email package) to OUT.

    python3 smtp_server.py OUT PORT MODE [CERT KEY]

MODE: `plain` (no TLS, no AUTH), `starttls` (STARTTLS and AUTH required),
`smtps` (TLS from the first byte, AUTH required), `sink` (plain, and only
counts: one line `n` per email, for the bench). AUTH accepts
`journey` / `s3cret`. A recipient `reject...@` is refused with 550; a
recipient `later...@` gets 451 on its first two tries. Prints `ready` once
it listens.
"""

import asyncio
import email
import json
import ssl
import sys
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

OUT, PORT, MODE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
CERT, KEY = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)


class Handler:
    def __init__(self):
        self.tries = {}
        self.out = open(OUT, "a", buffering=1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user here"
        if address.startswith("later"):
            self.tries[address] = self.tries.get(address, 0) + 1
            if self.tries[address] <= 2:
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if MODE == "sink":
            self.out.write("n\n")
            return "250 OK"
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        text = html = None
        for part in message.walk():
            if part.get_content_type() == "text/plain" and text is None:
                text = part.get_content()
            elif part.get_content_type() == "text/html" and html is None:
                html = part.get_content()
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": message["Subject"],
            "message_id": message["Message-ID"],
            "x_journey_message_id": message["X-Journey-Message-Id"],
            "list_unsubscribe": message["List-Unsubscribe"],
            "content_type": message.get_content_type(),
            "text": text,
            "html": html,
            "login": login,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
        }
        self.out.write(json.dumps(record) + "\n")
        return "250 2.0.0 accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"journey"
        and auth_data.password == b"s3cret"
    )
    # Not `handled`: aiosmtpd answers 235 or 535 itself.
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def tls_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    return context


def main():
    kwargs = {}
    if MODE == "starttls":
        kwargs = dict(
            tls_context=tls_context(),
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
        )
    elif MODE == "smtps":
        kwargs = dict(
            ssl_context=tls_context(),
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )
    controller = Controller(Handler(), hostname="127.0.0.1", port=PORT, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
