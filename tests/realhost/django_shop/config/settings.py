"""A minimal real Django project for the real-host test: uploads go to $MEDIA_ROOT,
the folder the django profile gets from systemd (StateDirectory=)."""

import os

SECRET_KEY = "real-host-test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "config.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
MEDIA_ROOT = os.environ["MEDIA_ROOT"]
MEDIA_URL = "/media/"
