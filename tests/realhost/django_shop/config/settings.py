"""A minimal real Django project for the real-host test: uploads go to $MEDIA_ROOT,
the folder the django profile gets from systemd (StateDirectory=); the SQLite
database lives in $DB_DIR (another state directory), never in the read-only release."""

import os

SECRET_KEY = "real-host-test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "config.urls"
INSTALLED_APPS: list[str] = ["shop"]
MIDDLEWARE: list[str] = []
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(os.environ["DB_DIR"], "db.sqlite3")}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
MEDIA_ROOT = os.environ["MEDIA_ROOT"]
MEDIA_URL = "/media/"
STATIC_ROOT = os.environ["STATIC_ROOT"]
STATIC_URL = "/static/"
