"""Keep-alive HTTP load against nginx, run *inside* the container with its own python3.

Usage: python3 load.py SECONDS HOST_HEADER [https] [STOP_FILE]; prints JSON: {"ok": N, "failures": [...],
"retried": N}.
With https: port 443 (the chain is verified by the tests' curl, not here). With STOP_FILE the load
also ends as soon as that file exists (SECONDS is then the upper bound).
"""

import http.client
import json
import os
import ssl
import sys
import threading
import time

SECONDS, HOST = float(sys.argv[1]), sys.argv[2]
HTTPS = "https" in sys.argv[3:]
STOP = next((arg for arg in sys.argv[3:] if arg != "https"), None)


def connect() -> http.client.HTTPConnection:
    if not HTTPS:
        return http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    # no SNI to 127.0.0.1: nginx answers with its default TLS server, the site's only one
    return http.client.HTTPSConnection("127.0.0.1", 443, timeout=10, context=context)


results = {"ok": 0, "failures": [], "retried": 0}
lock = threading.Lock()
#: the server closed a kept-alive connection just as a request went out on it (nginx's old workers
#: close idle ones when a reload retires them): no byte of an answer came, so a GET is sent again on
#: a new connection, as browsers, curl and urllib3 do (RFC 9112, 9.3.1). A failure on a new
#: connection, or a second one, is a failure.
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def get(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/", headers={"Host": HOST})
    response = conn.getresponse()
    response.read()
    if response.getheader("connection", "").lower() == "close":
        conn.close()
    return response.status


def client() -> None:
    conn, used = connect(), 0
    end = time.monotonic() + SECONDS
    while time.monotonic() < end and not (STOP and os.path.exists(STOP)):
        try:
            try:
                status = get(conn)
            except STALE:
                if used == 0:
                    raise
                conn.close()
                conn, used = connect(), 0
                with lock:
                    results["retried"] += 1
                status = get(conn)
            used = 0 if conn.sock is None else used + 1  # closed by a Connection: close answer
            with lock:
                if status == 200:
                    results["ok"] += 1
                else:
                    results["failures"].append(status)
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                results["failures"].append(repr(exc))
            conn.close()
            conn, used = connect(), 0
    conn.close()


threads = [threading.Thread(target=client) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(results))
