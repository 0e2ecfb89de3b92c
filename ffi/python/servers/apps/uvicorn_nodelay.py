"""uvicorn's command line with the one-line fix of uvicorn issue #3149
(open for uvicorn 0.54): with --workers N, the listening socket is made with
proto 0, so asyncio never sets TCP_NODELAY on the connections it accepts and
every keep-alive response after the first waits ~40 ms for the client's
delayed ACK (4 workers answered 357 requests/s against 2,346 for one here).
The benchmark measures stock uvicorn and uvicorn with this fix; the tests
use stock uvicorn. Usage: python uvicorn_nodelay.py <uvicorn arguments>.
"""

import socket
import sys

import uvicorn.config
from uvicorn.main import main

_bind_socket = uvicorn.config.Config.bind_socket


def bind_socket(self):  # type: ignore[no-untyped-def]
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        # The same bound, listening descriptor, told it is TCP.
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


uvicorn.config.Config.bind_socket = bind_socket

if __name__ == "__main__":
    sys.exit(main())
