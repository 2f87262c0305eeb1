"""v2 adds a model (and its migration, run by the migrate hook before the switch)."""

from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
