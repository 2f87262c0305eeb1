"""TLS for the nginx site: Mozilla's policies (``policy``), and certificates that
deploykit issues and renews through ACME (``certbot``: the client's command
lines, pure; ``issue``: running them on the host inside apply's transaction)."""
