"""Typed settings: ``model`` (the models), ``server`` (ServerSettings alone,
cheap to import), ``load`` (merging the sources) and ``types``. Import from
the submodules; this package imports nothing so the server starts fast."""
