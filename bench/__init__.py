"""`make bench`: the benchmark harness (run.py) and the ASGI apps it serves (apps.py)."""
