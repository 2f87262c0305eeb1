"""v2: the v1 views, and GET /items, which uses the new model (its table exists only after migrate)."""

from importlib.metadata import version

from django.core.files.storage import default_storage
from django.http import HttpRequest, JsonResponse
from django.urls import path
from shop.models import Item


def upload(request: HttpRequest) -> JsonResponse:
    received = request.FILES["file"]
    name = default_storage.save(f"uploads/{received.name}", received)
    return JsonResponse({"url": default_storage.url(name), "path": default_storage.path(name)})


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"version": version("shop"), "media_root": default_storage.location})


def items(request: HttpRequest) -> JsonResponse:
    Item.objects.create(name="from v2")
    return JsonResponse({"items": Item.objects.count()})


urlpatterns = [path("", index), path("upload", upload), path("items", items)]
