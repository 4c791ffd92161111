"""A local HTTP server answering like the ECB's rate files, or failing on purpose (tests only)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ECB_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/'
    '2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">\n<gesmes:subject>Reference '
    "rates</gesmes:subject><gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>"
    "\n<Cube>\n"
)


def ecb_xml(days: dict[str, dict[str, float]]) -> bytes:
    """An ECB file (daily: one day; history: many, newest first) of {day: {currency: per EUR}}."""
    body = "".join(
        f'<Cube time="{day}">' + "".join(f'<Cube currency="{c}" rate="{r}"/>' for c, r in rates.items()) + "</Cube>\n"
        for day, rates in sorted(days.items(), reverse=True)
    )
    return (ECB_HEAD + body + "</Cube>\n</gesmes:Envelope>\n").encode()


class EcbServer:
    """`answers[path] = (status, body)`; a path not set answers 404. `requests` counts what was asked."""

    def __init__(self):
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                status, body = server.answers.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
