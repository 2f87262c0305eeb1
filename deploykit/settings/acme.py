"""``[nginx.tls.acme]``: certificates issued and renewed by deploykit through an
ACME server (Let's Encrypt by default), validated by HTTP-01 on port 80.

The certificate lands in files deploykit manages (``live_dir``); the site's
``server_names`` are its names. What HTTP-01 cannot validate (``_``, a
wildcard, an IP address) and what cannot work (listen not 80) are refused in
``NginxSettings`` where the fields meet."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from deploykit.settings.base import Model
from deploykit.settings.syntax import control_character
from deploykit.settings.types import SafePath

#: The named directories: name -> (URL, whether the CA requires an account email).
#: Let's Encrypt accepts accounts without a contact (RFC 8555 makes it optional, and it
#: ended its expiry mails in 2025); a directory added here that needs one says so.
DIRECTORIES: dict[str, tuple[str, bool]] = {
    "letsencrypt": ("https://acme-v02.api.letsencrypt.org/directory", False),
    "staging": ("https://acme-staging-v02.api.letsencrypt.org/directory", False),
}
_URL = re.compile(r"https://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/%\-]*)?")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")


class AcmeSettings(Model):
    email: str | None = Field(default=None, description="the ACME account's contact address")
    directory: str = Field(
        default="letsencrypt",
        description="'letsencrypt' (production), 'staging' (Let's Encrypt's test CA), or any https:// directory URL",
    )
    ca_bundle: SafePath | None = Field(
        default=None, description="PEM file of CAs to trust for the ACME server's own HTTPS (a private ACME server)"
    )
    key_type: Literal["ecdsa", "rsa"] = Field(default="ecdsa", description="the certificate key: P-256 or RSA 2048")
    client: SafePath = Field(
        default="/opt/deploykit/bin/certbot",
        description="certbot in deploykit's venv on the host (`pip install 'deploykit-asgi[acme]'`)",
    )
    config_dir: SafePath = Field(
        default="/etc/deploykit/acme", description="account key, certificates and renewal settings (root only)"
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (control_character(value) is not None or not _EMAIL.fullmatch(value)):
            raise ValueError(f"{value!r} is not an email address (name@example.com)")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        """Read where the settings are loaded (apply runs on the host): the client trusts this file."""
        if value is None:
            return value
        try:
            with open(value, "rb") as file:
                head = file.read(1 << 20)
        except OSError as exc:
            raise ValueError(f"{value}: cannot read ({exc.strerror})") from exc
        if b"-----BEGIN CERTIFICATE-----" not in head:
            raise ValueError(f"{value} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        return value

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if value in DIRECTORIES or _URL.fullmatch(value):
            return value
        raise ValueError(f"{value!r} is neither {' nor '.join(map(repr, DIRECTORIES))} nor an https:// URL")

    @property
    def directory_url(self) -> str:
        return DIRECTORIES[self.directory][0] if self.directory in DIRECTORIES else self.directory

    @property
    def requires_email(self) -> bool:
        return DIRECTORIES.get(self.directory, ("", False))[1]

    def live_dir(self, cert_name: str) -> str:
        """Where the client keeps the current certificate of CERT_NAME (links into archive/)."""
        return f"{self.config_dir}/live/{cert_name}"


def http01_refusal(name: str) -> str | None:
    """Why HTTP-01 cannot validate server name NAME, or None."""
    if name == "_":
        return "'_' (the catch-all) is not a name a certificate can hold"
    if "*" in name:
        return f"{name!r} is a wildcard: only DNS-01 validates those, and deploykit uses HTTP-01"
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None
    return f"{name!r} is an IP address: HTTP-01 certificates are for host names"
