"""The HTTP server as production runs it: daphne, capped. `python -m config.server [daphne's options] APP`.

daphne (through Twisted) receives a request's whole body before it calls the application, then hands all of it
to the application's queue at once: a 200 MB POST held 200 MB in the server process whatever the application
answered, so the ASGI cap of common/asgi.py cannot protect daphne itself. Twisted also parses form bodies on its
own, in memory, and answers a multipart body it cannot parse with an empty 400 before the application sees it.

This is daphne's command line with one change to its requests (`CappedRequest`):

- a `Content-Length` over `REQUEST_MAX_BODY_BYTES`, or a body (chunked or lying about its length) that grows past
  it, is answered 413 in the one error shape (`request_too_large`) at once and the connection closed; no more than
  the cap is kept (Twisted spools bodies over 100 KB to a temporary file, daphne then queues them);
- form bodies are left to Django (Twisted's parsing is off), so a malformed one gets the API's JSON 400;
- what Twisted refuses before a request exists answers in the one error shape instead of a bare 400 or a closed
  connection: a request line longer than 16 KiB is a 414 (`uri_too_long`), a longer header line a 431
  (`headers_too_large`), any other malformed request line or header (a NUL in a header, headers over 16 KiB in all)
  a 400 (`bad_request`).

Options and behaviour are otherwise daphne's (`daphne --help`). `manage.py runserver` (development) is plain
daphne; a proxy in front caps bodies too (docs/operations.md, "Request limits").
"""

from typing import Any

from daphne import cli
from daphne import server as daphne_server
from daphne.http_protocol import HTTPFactory, WebRequest
from django.conf import settings
from twisted.web.http import HTTPChannel


class CappedRequest(WebRequest):
    """daphne's request, refused with 413 as soon as its body is known to pass the cap; Twisted parses no form."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.body_received = 0
        self.refused = False
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    @staticmethod
    def limit() -> int:
        return settings.REQUEST_MAX_BODY_BYTES

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's name
        super().gotLength(length)
        if length is not None and length > self.limit():
            self.refuse()

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        if self.refused:
            return  # what the client still sends before the connection closes is dropped
        self.body_received += len(data)
        if self.body_received > self.limit():
            self.refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802 - Twisted's name
        if not self.refused:  # a refused request never reaches the application
            super().requestReceived(command, path, version)

    def refuse(self) -> None:
        # Imported here: the module is loaded before Django is set up (the application is imported after it).
        from common.asgi import request_too_large_response

        self.refused = True
        answer_and_close(self.channel, "Content Too Large", request_too_large_response(self.limit()))


def answer_and_close(channel: Any, reason: str, response: tuple[int, list[tuple[bytes, bytes]], bytes]) -> None:
    """Writes `response` (status, headers, body, as `common.asgi.error_response` makes them) on the connection
    itself, before any request reached the application, and closes it."""
    status, headers, body = response
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    channel.transport.write(b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, reason.encode(), head, body))
    channel.loseConnection()


def refuse_malformed(channel: Any, status: int, reason: str, error: str, detail: str) -> None:
    """Answers a request Twisted cannot parse in the one error shape and closes the connection."""
    from common.asgi import error_response  # see refuse(): Django is set up after this module loads

    answer_and_close(channel, reason, error_response(status, error=error, detail=detail))


def refusals_install(channel: HTTPChannel) -> None:
    """Replaces Twisted's two ways of refusing a malformed request: a bare `400` with no body, and (for a line over
    16 KiB) a connection closed with no answer at all."""

    def line_too_long(line: bytes) -> None:
        # Twisted's private flag: true while the channel waits for a request line, false once in the headers.
        if channel._HTTPChannel__first_line:  # type: ignore[attr-defined]
            refuse_malformed(channel, 414, "URI Too Long", "uri_too_long", "The request line is longer than 16 KiB.")
        else:
            refuse_malformed(
                channel, 431, "Request Header Fields Too Large", "headers_too_large", "A header is longer than 16 KiB."
            )

    def bad_request() -> None:
        refuse_malformed(
            channel, 400, "Bad Request", "bad_request", "The request line or headers are malformed or too large."
        )

    channel.lineLengthExceeded = line_too_long  # type: ignore[method-assign]
    channel._respondToBadRequestAndDisconnect = bad_request  # type: ignore[method-assign]


class CappedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 - Twisted's name
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = CappedRequest
        # Twisted wraps the channel in a proxy that picks HTTP/1.1 or HTTP/2; HTTP/1.1's channel is `_channel`.
        refusals_install(protocol._channel)
        return protocol


class Server(daphne_server.Server):
    """daphne's server with `CappedHTTPFactory`."""

    # daphne's run() makes its HTTP factory inline (`self.http_factory = HTTPFactory(self)`): this property is the
    # one seam to put ours in its place without copying run().
    @property
    def http_factory(self) -> HTTPFactory:
        return self._capped_http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        self._capped_http_factory = CappedHTTPFactory(factory.server)


class CommandLineInterface(cli.CommandLineInterface):
    server_class = Server


if __name__ == "__main__":
    CommandLineInterface.entrypoint()
