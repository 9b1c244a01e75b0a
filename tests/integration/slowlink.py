"""A TCP forwarder on loopback that holds every new connection for ``delay`` seconds
before relaying it, at most ``rate`` bytes a second each way if given: a node with a slow
path to the proxy (the common-start test), or a transfer long enough to interrupt."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time


class SlowLink:
    def __init__(self, upstream_port: int, delay: float = 0.0, rate: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.rate = rate
        self._relayed: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        time.sleep(self.delay)
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self._relayed += [client, upstream]
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(src, dst, self.rate), daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def cut(self) -> None:
        """Break every connection relayed so far (the proxy dies under its clients);
        new ones are still served."""
        linger = struct.pack("ii", 1, 0)  # close at once with a reset, as a dead process
        for sock in self._relayed:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                sock.close()


def _pump(src: socket.socket, dst: socket.socket, rate: float = 0.0) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
