"""A TCP forwarder a test controls: a server that goes away and comes back.

`pg_ctl restart -m fast` does two things to the app: it ends every
connection, and for a while no new one is accepted. Terminating backends
(tests/shop/test_pool.py) shows only the first. A forwarder between the
pool and the primary shows both, on this test's connections only: `cut()`
closes every connection through it and stops listening, so a connect is
refused at once, as by a stopped server; `restore()` listens on the same
port again. The real primary never stops.
"""

import contextlib
import socket
import threading


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Forwarder:
    """Forward 127.0.0.1:`port` to (host, target_port), byte for byte.

    TLS passes through untouched, so certificate checks hold: the client
    still talks to the server's own certificate, on the host it names.
    """

    def __init__(self, host: str, target_port: int):
        self.target = (host, int(target_port))
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def open(self) -> None:
        listener = socket.socket()
        # The connections cut() closed linger in TIME_WAIT on this port.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        # accept() wakes up now and then to see whether cut() closed it.
        listener.settimeout(0.05)
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name="forwarder", daemon=True
        )
        self._acceptor.start()

    restore = open

    def cut(self) -> None:
        """End every forwarded connection and refuse new ones until restore()."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.close()
        self._acceptor.join()
        with self._lock:
            sockets = list(self._sockets)
        self._drop(*sockets)

    close = cut

    def connections(self) -> int:
        """Forwarded connections open now."""
        with self._lock:
            return len(self._sockets) // 2

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._sockets.discard(sock)
            # shutdown() wakes the pump blocked in recv() on it; close() alone
            # would not.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
