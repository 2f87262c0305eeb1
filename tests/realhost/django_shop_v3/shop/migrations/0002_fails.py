"""v3's migration fails: apply must stop before the switch and keep v2 serving."""

from django.db import migrations


def fail(apps: object, schema_editor: object) -> None:
    raise RuntimeError("v3 migration 0002 fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunPython(fail)]
