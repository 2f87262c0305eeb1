"""Keep-alive HTTP load against nginx, run *inside* the container with its own python3.

Usage: python3 load.py SECONDS HOST_HEADER [https] [STOP_FILE]; prints {"ok": N, "failures": [...]} as JSON.
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


results = {"ok": 0, "failures": []}
lock = threading.Lock()


def client() -> None:
    conn = connect()
    end = time.monotonic() + SECONDS
    while time.monotonic() < end and not (STOP and os.path.exists(STOP)):
        try:
            conn.request("GET", "/", headers={"Host": HOST})
            response = conn.getresponse()
            response.read()
            with lock:
                if response.status == 200:
                    results["ok"] += 1
                else:
                    results["failures"].append(response.status)
            if response.getheader("connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                results["failures"].append(repr(exc))
            conn.close()
            conn = connect()
    conn.close()


threads = [threading.Thread(target=client) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(results))
