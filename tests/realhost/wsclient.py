"""A stdlib-only WebSocket client run inside the container: upgrade through
nginx, send one masked text frame, print the status line and the echo.

Usage: python3 wsclient.py HOST_HEADER PATH TEXT
"""

import base64
import os
import socket
import struct
import sys

host, path, text = sys.argv[1], sys.argv[2], sys.argv[3].encode()
sock = socket.create_connection(("127.0.0.1", 80), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall(
    (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
)
head = b""
while b"\r\n\r\n" not in head:
    chunk = sock.recv(4096)
    if not chunk:
        break
    head += chunk
status, _, rest = head.partition(b"\r\n\r\n")
print(status.split(b"\r\n")[0].decode())
if b" 101 " not in status.split(b"\r\n")[0]:
    sys.exit(1)
mask = os.urandom(4)
payload = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + payload)
data = rest
while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
    chunk = sock.recv(4096)
    if not chunk:
        break
    data += chunk
print(data[2 : 2 + (data[1] & 0x7F)].decode())
