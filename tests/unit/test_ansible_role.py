"""The deploykit.stack collection's pure parts: settings overrides -> `--set`
options (its filter plugin), read back by deploykit's own loader; the role's
documented variables match its defaults; the collection's version is
deploykit's. The collection itself runs in molecule/ (make test-fleet)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from deploykit.settings.load import load

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "ansible" / "collections" / "ansible_collections" / "deploykit" / "stack"
ROLE = STACK / "roles" / "deploykit"


def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploykit_settings", STACK / "plugins/filter/deploykit_settings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def overrides(settings: dict[str, Any]) -> list[str]:
    args: list[str] = plugin().set_args(settings)
    assert args[::2] == ["--set"] * (len(args) // 2)
    return args[1::2]


def test_each_leaf_is_one_set_option_written_as_toml() -> None:
    settings = {"app": {"module": "shop.main:app", "env": {"A": "1"}}, "gunicorn": {"workers": 4}}
    assert overrides(settings) == ['app.module="shop.main:app"', 'app.env.A="1"', "gunicorn.workers=4"]
    assert overrides({}) == [] and plugin().set_args(None) == []


def test_deploykit_reads_every_value_back_with_its_type() -> None:
    settings = {
        "app": {"env": {"DEMO_GREETING": 'say "hi" \\ ünï {x}', "EMPTY": "", "NUMBER": "8"}},
        "gunicorn": {"workers": 3, "preload_app": True},
        "nginx": {
            "server_names": ["a.example.com", "b.example.com"],
            "static": [{"url": "/assets/", "path": "/srv/demo/assets/"}],
        },
    }
    loaded = load(project=ROOT / "examples" / "deploykit.toml", environ={}, overrides=overrides(settings)).settings
    assert loaded.app.env["DEMO_GREETING"] == 'say "hi" \\ ünï {x}'
    assert loaded.app.env["EMPTY"] == "" and loaded.app.env["NUMBER"] == "8"
    assert loaded.app.module == "app.main:app"  # the project file's value: a nested dict merges, never replaces
    assert loaded.gunicorn.workers == 3 and loaded.gunicorn.preload_app is True
    assert list(loaded.nginx.server_names) == ["a.example.com", "b.example.com"]
    assert [(s.url, s.path) for s in loaded.nginx.static] == [("/assets/", "/srv/demo/assets/")]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"app": {"module": None}}, "app.module: NoneType values have no TOML form"),
        ({"app": {"env": {"A.B": "x"}}}, "'app.env.A.B': empty, or holds '.' or '='"),
        ({"app": {"": "x"}}, "'app.': empty"),
    ],
)
def test_values_and_keys_a_set_option_cannot_carry_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(plugin().AnsibleFilterError, match=message.replace(".", r"\.").replace("(", r"\(")):
        plugin().set_args(settings)


def test_control_characters_are_escaped() -> None:
    assert overrides({"app": {"env": {"X": "a\nb\x7f"}}}) == ['app.env.X="a\\u000ab\\u007f"']


def test_every_role_variable_is_documented_with_its_default() -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    spec = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert set(defaults) == set(spec)
    for name, option in spec.items():
        if not option.get("required"):
            assert option.get("default") == defaults[name], name


def test_the_example_inventory_settings_load() -> None:
    inventory = ROOT / "ansible" / "inventory" / "example"
    group = yaml.safe_load((inventory / "group_vars/app.yml").read_text())["deploykit_settings"]
    host = yaml.safe_load((inventory / "host_vars/web2.example.com.yml").read_text())["deploykit_host_settings"]
    merged = {**group, **{section: {**group.get(section, {}), **values} for section, values in host.items()}}
    loaded = load(project=ROOT / "examples" / "deploykit.toml", environ={}, overrides=overrides(merged)).settings
    assert list(loaded.nginx.server_names) == ["demo.example.com"]
    assert loaded.app.env["DEMO_GREETING"] == "hello from the fleet" and loaded.gunicorn.workers == 8


def test_the_collection_is_versioned_as_deploykit() -> None:
    """One version: a collection built from this tree installs this deploykit's wheels."""
    galaxy = yaml.safe_load((STACK / "galaxy.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (galaxy["namespace"], galaxy["name"]) == ("deploykit", "stack")
    assert galaxy["version"] == project["version"]


def test_the_role_installs_the_distribution_this_tree_builds() -> None:
    """The role finds deploykit's wheel by its distribution name and pip-installs that name."""
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert defaults["deploykit_distribution"] == project["name"]
