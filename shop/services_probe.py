"""Cheap checks of whether an optional service answers, used at settings time."""

import socket
from urllib.parse import urlparse


def redis_answers(url, timeout=0.5):
    """Return True when a Redis server answers PING at `url`."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if parsed.password:
                user = parsed.username or "default"
                sock.sendall(f"AUTH {user} {parsed.password}\r\n".encode())
                sock.recv(64)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
