"""How the openai backend's requests reach the server: a lean HTTP path, or the official SDK.

Both take a path (``/chat/completions``), a JSON body and extra headers, and return the
decoded JSON answer.  Both fail with the SDK's exception types (``openai.RateLimitError``,
``openai.APIConnectionError``, ...), so the backend classifies errors in one place whichever
path a request took.

- :class:`LeanTransport`, for OpenAI-compatible servers (``--base-url``): JSON over keep-alive
  HTTP/1.1 connections, written and parsed here on asyncio's transports.  The SDK's request
  building and response models, and the client and pool layers of ``httpx`` / ``httpcore``
  (whose pool scans every connection for every request), cost 2-5 ms of CPU per request,
  which at a local server's speed is most of a run's time; this path costs a tenth of that.
  A new connection to a loopback address carries its request at once (see
  :meth:`LeanTransport._exchange_on_new_connection`).
- :class:`SdkTransport`, for OpenAI and Azure OpenAI: the SDK's client (its URLs, auth headers,
  proxies from the environment), asked for the raw body so that both paths parse alike.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import select
import socket
import ssl
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import orjson

USER_AGENT = "rafa-core"
_MAX_HEAD = 64 * 1024  # a response head longer than this is not an API's


def suits(base_url: str | None) -> bool:
    """Whether the lean path can reach ``base_url``: plain http(s), no query, no proxy set for it
    (the SDK's client honours the proxy variables; this path does not)."""
    if not base_url:
        return False
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        return False
    proxies = urllib.request.getproxies()
    return not (proxies.get(parts.scheme) or proxies.get("all")) or bool(urllib.request.proxy_bypass(parts.hostname))


class ResponseError(Exception):
    """The server's bytes are not an HTTP/1.1 response we can read (or the connection ended early)."""


class LeanTransport:
    """POST JSON to an OpenAI-compatible server over pooled keep-alive HTTP/1.1 connections."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float, max_connections: int) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"the lean HTTP path needs a plain http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._prefix = parts.path
        self._head = (f"Host: {parts.netloc}\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                      f"User-Agent: {USER_AGENT}\r\nAuthorization: Bearer {api_key}\r\n")
        self.timeout = timeout
        self.max_idle = max(1, max_connections)
        self._idle: list[_Connection] = []
        self._loopback = None if self._ssl is not None else _loopback_address(self._host, self._port)

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        url = self.base_url + path
        content = encode_body(body)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) if headers else ""
        head = f"POST {self._prefix}{path} HTTP/1.1\r\n{self._head}{extra}Content-Length: {len(content)}\r\n\r\n"
        request = head.encode("latin-1") + content
        try:
            connection = self._idle_connection()
            if connection is None:
                connection, (status, response_headers, data) = await self._exchange_on_new_connection(request)
            else:
                status, response_headers, data = await connection.exchange(request, self.timeout)
        except asyncio.TimeoutError as exc:
            raise openai.APITimeoutError(request=httpx.Request("POST", url)) from exc
        except (OSError, ResponseError) as exc:
            raise openai.APIConnectionError(message=f"Connection error: {type(exc).__name__}: {exc}",
                                            request=httpx.Request("POST", url)) from exc
        if connection.reusable and len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()
        if status >= 400:
            raise status_error(url, status, response_headers, data)
        return decode_answer(data)

    def _idle_connection(self) -> "_Connection | None":
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:  # the server may have closed it while it was idle
                return connection
        return None

    async def _exchange_on_new_connection(self, request: bytes) -> tuple["_Connection", Any]:
        """A new connection and its first exchange.  To a server on this machine the request goes
        out at once: on Linux a loopback connection is up within the connect call, and waiting for
        the event loop to report it would hold the request back a whole turn of the loop (in a
        burst of hundreds of new requests, ~0.1 s each)."""
        if self._loopback is None:
            connection = await self._new_connection()
            return connection, await connection.exchange(request, self.timeout)
        sock = await self._loopback_socket(*self._loopback)
        connection = _Connection(asyncio.get_running_loop())
        return connection, await connection.exchange(request, self.timeout, sock=sock)

    async def _loopback_socket(self, family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
        """A non-blocking socket connected to the server on this machine: on Linux within the
        connect call (the kernel sets up a loopback connection at once), elsewhere maybe later."""
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            error = sock.connect_ex(address)
            if error in (errno.EINPROGRESS, errno.EWOULDBLOCK):
                if not _settled(sock):  # not up yet: wait for it as the loop would
                    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, address), self.timeout)
                    return sock
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, f"Connect call failed {address}")  # e.g. ConnectionRefusedError
            return sock
        except BaseException:
            sock.close()
            raise

    async def _new_connection(self) -> "_Connection":
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: _Connection(loop), self._host, self._port, ssl=self._ssl),
            self.timeout,
        )
        return connection

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


def encode_body(body: dict[str, Any]) -> bytes:
    """A request body: compact UTF-8 JSON (orjson; the standard encoder for what orjson refuses,
    such as a lone surrogate that model text carried into a prompt)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def decode_answer(data: bytes) -> Any:
    """An answer's JSON (orjson; the standard parser for what orjson refuses, such as the
    ``NaN`` / ``Infinity`` some servers write).  A ValueError on a cut-off body: retried."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _loopback_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]] | None:
    """(family, address) of a loopback IP address (``127.0.0.1``, ``::1``), else None."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # a name: resolving it is the event loop's work
        return None
    if not ip.is_loopback or not hasattr(select, "poll"):
        return None
    return (socket.AF_INET, (host, port)) if ip.version == 4 else (socket.AF_INET6, (host, port, 0, 0))


def _settled(sock: socket.socket) -> bool:
    """Whether a connect in progress has ended (up, or failed), without waiting."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(0))


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request written, its response read into a future."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self._head: tuple[int, list[tuple[bytes, bytes]], int, str] | None = None  # status, headers, body start, framing

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.reusable = True

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None or self._waiter.done():
            if self._waiter is None:  # bytes nobody asked for: the connection is not in step
                self.close()
            return
        try:
            self._parse(at_eof=False)
        except ResponseError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            try:
                self._parse(at_eof=True)
            except ResponseError as error:
                self._fail(error)
            if not self._waiter.done():
                self._fail(ConnectionResetError("the server closed the connection before answering"))

    # -- one exchange -------------------------------------------------------------------------
    async def exchange(self, request: bytes, timeout: float,
                       sock: socket.socket | None = None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send ``request`` and wait for its response.  ``sock``: a connected socket this protocol
        is to be attached to (a new connection); the request is sent on it before that."""
        self._buffer.clear()
        self._head = None
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, self._time_out)
        try:
            if sock is None:
                assert self.transport is not None
                self.transport.write(request)
            else:
                try:
                    sent = sock.send(request)  # the waiter is set: an answer read on attaching is kept
                except BlockingIOError:  # a full buffer: all of it goes once attached
                    sent = 0
                await self.loop.create_connection(lambda: self, sock=sock)
                if sent < len(request):
                    self.transport.write(request[sent:])  # type: ignore[union-attr]
            return await waiter
        except BaseException:
            self.close()  # cancelled or failed half-way: the connection is out of step
            if self.transport is None and sock is not None:
                sock.close()
            raise
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _time_out(self) -> None:
        self._fail(asyncio.TimeoutError())

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def _parse(self, at_eof: bool) -> None:
        """Resolve the waiter once the whole response is in the buffer."""
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD or (at_eof and self._buffer):
                    raise ResponseError("a response head that does not end")
                return
            self._head = _parse_head(bytes(self._buffer[:end]), end + 4)
        status, headers, start, framing = self._head
        if framing == "chunked":
            data = _dechunk(bytes(self._buffer[start:]))
            if data is None:
                if at_eof:
                    raise ResponseError("the connection ended inside a chunked body")
                return
        elif framing == "eof":
            if not at_eof:
                return
            data = bytes(self._buffer[start:])
        else:
            length = int(framing)
            if len(self._buffer) - start < length and not at_eof:
                return
            data = bytes(self._buffer[start:start + length])  # cut short at EOF: a truncated body
        if at_eof or _header(headers, b"connection") == b"close":
            self.reusable = False
        self._waiter.set_result((status, headers, data))  # type: ignore[union-attr]


def _parse_head(head: bytes, body_start: int) -> tuple[int, list[tuple[bytes, bytes]], int, str]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ResponseError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ResponseError(f"a malformed header line: {line[:80]!r}")
        headers.append((name.strip().lower(), value.strip()))
    if b"chunked" in (_header(headers, b"transfer-encoding") or b"").lower():
        framing = "chunked"
    else:
        length = _header(headers, b"content-length")
        if length is not None and not length.isdigit():
            raise ResponseError(f"a bad Content-Length: {length[:40]!r}")
        framing = length.decode("ascii") if length is not None else "eof"
    return int(parts[1]), headers, body_start, framing


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _dechunk(raw: bytes) -> bytes | None:
    """The body of a complete chunked encoding, or None while more is to come."""
    data, position = bytearray(), 0
    while True:
        line_end = raw.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = raw[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ResponseError(f"a bad chunk size: {size_text[:20]!r}")
        if size == 0:
            trailer_end = raw.find(b"\r\n\r\n", line_end)
            return bytes(data) if trailer_end >= 0 or raw.endswith(b"0\r\n\r\n") else None
        start = line_end + 2
        if len(raw) < start + size + 2:
            return None
        data += raw[start:start + size]
        position = start + size + 2


class SdkTransport:
    """POST through an ``AsyncOpenAI`` / ``AsyncAzureOpenAI`` client (``client.post``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        options = {"headers": headers} if headers else {}
        raw = await self.client.post(path, body=body, cast_to=bytes, options=options)
        return decode_answer(raw)

    async def aclose(self) -> None:
        await self.client.close()


_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def status_error(url: str, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> openai.APIStatusError:
    """The SDK's exception for an error answer, as the SDK itself would raise it."""
    response = httpx.Response(status, headers=headers, content=content, request=httpx.Request("POST", url))
    try:
        body: Any = json.loads(content)
    except ValueError:
        body = content.decode("utf-8", "replace") or None
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") if isinstance(error, dict) else None
    message = f"Error code: {status} - {message or body}"
    kind = _STATUS_ERRORS.get(status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return kind(message, response=response, body=error)
