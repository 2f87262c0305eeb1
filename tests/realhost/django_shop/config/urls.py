"""POST /upload saves the file with Django's default storage (under MEDIA_ROOT);
GET / names the release's version (the package's)."""

from importlib.metadata import version

from django.core.files.storage import default_storage
from django.http import HttpRequest, JsonResponse
from django.urls import path


def upload(request: HttpRequest) -> JsonResponse:
    received = request.FILES["file"]
    name = default_storage.save(f"uploads/{received.name}", received)
    return JsonResponse({"url": default_storage.url(name), "path": default_storage.path(name)})


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"version": version("shop"), "media_root": default_storage.location})


urlpatterns = [path("", index), path("upload", upload)]
