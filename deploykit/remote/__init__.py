"""Deploy to a server over SSH (``--host ssh://[user@]host[:port]``): parse the
hosts (``target``), reach them with the system ssh (``host/ssh.py``), prepare
them (``session.bootstrap``) and run the same engine there through the agent
(``agent``), under a transient unit for apply and rollback."""
