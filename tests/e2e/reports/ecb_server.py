"""A local HTTP server answering like the ECB's rate files, or failing on purpose (tests only)."""

from __future__ import annotations

from tests.http_receiver import Answer, LocalServer, Request

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
        self._server = LocalServer(self._answer)
        self.url = self._server.url

    def _answer(self, request: Request) -> Answer:
        self.requests.append(request.path)
        status, body = self.answers.get(request.path, (404, b"not found"))
        return status, {"Content-Type": "text/xml"}, body

    def stop(self):
        self._server.stop()
