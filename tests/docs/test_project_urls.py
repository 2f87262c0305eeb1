"""The project's links have one source, pyproject.toml's [project.urls]; the docs site
(mkdocs.yml), the Ansible collection (galaxy.yml) and the changelog's links repeat them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GALAXY = ROOT / "ansible/collections/ansible_collections/deploykit/stack/galaxy.yml"


def urls() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found: dict[str, str] = project["urls"]
    return found


def test_pyproject_names_each_link_on_one_base() -> None:
    links = urls()
    assert set(links) >= {"Homepage", "Documentation", "Source", "Issues"}
    base = links["Source"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", base)
    assert links["Homepage"] == base and links["Issues"] == f"{base}/issues"
    assert links["Changelog"] == f"{base}/blob/main/CHANGELOG.md"
    owner, name = base.removeprefix("https://github.com/").split("/")
    assert links["Documentation"] == f"https://{owner}.github.io/{name}/"
    assert not any(re.search(r"example\.|TODO|placeholder|your-", url, re.I) for url in links.values())


def test_the_docs_site_links_the_same_places() -> None:
    links, site = urls(), yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert site["site_url"] == links["Documentation"]
    assert site["repo_url"] == links["Source"]
    assert site["repo_name"] == links["Source"].removeprefix("https://github.com/")


def test_the_ansible_collection_links_the_same_places() -> None:
    links, galaxy = urls(), yaml.safe_load(GALAXY.read_text())
    assert galaxy["repository"] == links["Source"]
    assert galaxy["documentation"] == links["Documentation"]
    assert galaxy["homepage"] == links["Homepage"]
    assert galaxy["issues"] == links["Issues"]


def test_the_changelog_compares_releases_in_the_same_repository() -> None:
    base = urls()["Source"]
    linked = re.findall(r"^\[[^\]]+\]: (\S+)$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert linked and all(url.startswith(f"{base}/") for url in linked)
