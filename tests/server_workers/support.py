"""Helpers shared by the process tests: raw requests, a load generator; polling is tests/polling.py's."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading


def children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return {int(p) for p in out.stdout.split()}


def get(port: int, path: str = "/", timeout: float = 5) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data:  # e.g. accepted by a worker that was then killed for being stuck
        raise ConnectionError("connection closed without a response")
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


class Load:
    """Keep-alive clients hammering the server from threads; counts failures."""

    def __init__(self, port: int, clients: int = 8) -> None:
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def _client(self) -> None:
        sock: socket.socket | None = None
        buffer = b""
        while not self.stop.is_set():
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    buffer = b""
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                while b"\r\n\r\n" not in buffer:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed before a response")
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += sock.recv(65536)
                buffer = rest[length:]
                if not head.startswith(b"HTTP/1.1 200"):
                    self.failures.append(head.split(b"\r\n")[0].decode())
                self.ok += 1
                if b"connection: close" in head.lower():
                    sock.close()
                    sock = None
            except OSError as exc:
                self.failures.append(repr(exc))
                if sock is not None:
                    sock.close()
                sock = None
        if sock is not None:
            sock.close()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def answers(port: int) -> bool:
    try:
        return get(port, timeout=1)[0] == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between open and read (ESRCH)
        return False
    return text[text.rindex(")") + 2 :][:1] != "Z"  # the state follows "(comm) ", and comm may hold spaces


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Test teardown: a supervisor or arbiter still running, and its workers, killed."""
    if proc.poll() is None:
        for pid in children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
