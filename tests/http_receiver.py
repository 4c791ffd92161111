"""The tests' and benches' one local HTTP server, on 127.0.0.1 and a port of its own: every receiver is built on it.

`LocalServer(answer)` calls `answer(request)` for each request (any method) in a thread of its own and sends
what it returns: a status, or (status, headers, body). `connections` bounds how many requests it serves at once,
as a small receiver would; `keep_alive` speaks HTTP/1.1 with connections kept open, as a real service does.
The webhook receiver (`tests/hook_receiver.py`), the socket service (`tests/socket_receiver.py`), the ECB
stand-in, a proxy answering 503 and the chaos soak's receivers are `answer` functions around it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = int | tuple[int, dict[str, str], bytes]


class LocalServer:
    def __init__(
        self,
        answer: Callable[[Request], Answer],
        *,
        path: str = "",
        connections: int | None = None,
        keep_alive: bool = False,
    ):
        slots = threading.BoundedSemaphore(connections) if connections else None

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def _handle(self) -> None:
                if slots:
                    slots.acquire()
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    request = Request(self.command, self.path, dict(self.headers.items()), body)
                    result = answer(request)
                finally:
                    if slots:
                        slots.release()
                status, headers, content = (result, {}, b"") if isinstance(result, int) else result
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 (http.server's names)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
