"""Releases kept on the host under ``paths.state_dir`` (root only, 0700)::

    releases/<id>/manifest.json   what was applied, from what, and how it ended
    releases/<id>/files/<path>    the files this release installed
    releases/<id>/before/<path>   the files it replaced, saved before any change
    current                       the id of the release now in place

``before/`` is written before anything on the host changes, so even a
deploy killed half-way leaves the previous files on disk. Ids are UTC
timestamps and sort in time order."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from deploykit.errors import DeployKitError, NoRelease
from deploykit.facts import HostState
from deploykit.host.base import Host
from deploykit.render.bundle import Bundle, Kind, RenderedFile

Status = Literal["pending", "applied", "rolled-back", "failed"]


@dataclass(frozen=True)
class Saved:
    """A file as it was before a release, or its absence."""

    path: str
    exists: bool
    mode: int = 0
    owner: str = ""
    group: str = ""


@dataclass
class Release:
    id: str
    source: str
    created: str
    status: Status = "pending"
    error: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    before: list[Saved] = field(default_factory=list)
    site_link_before: str | None = None
    finished: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Release:
        data = json.loads(text)
        data["before"] = [Saved(**saved) for saved in data.get("before", [])]
        return cls(**data)


def now_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")[:-4] + "Z"


class ReleaseStore:
    def __init__(self, host: Host, state_dir: str) -> None:
        self.host = host
        self.state_dir = state_dir.rstrip("/")

    def _dir(self, release_id: str) -> str:
        return f"{self.state_dir}/releases/{release_id}"

    def _put(self, path: str, content: bytes) -> None:
        self.host.write(path, content, mode=0o600)

    def begin(self, bundle: Bundle, before: HostState, source: str) -> Release:
        """Save what is about to be replaced and what will be installed, before any change."""
        self.host.make_dir(self.state_dir, mode=0o700)
        release_id = now_id()
        while self.host.list_dir(self._dir(release_id)):
            release_id = now_id()
        base = self._dir(release_id)
        saved = []
        for file in bundle:
            facts = before.files.get(file.path)
            if facts is not None:
                self._put(f"{base}/before{file.path}", facts.content)
                saved.append(Saved(file.path, True, facts.mode, facts.owner, facts.group))
            else:
                saved.append(Saved(file.path, False))
            self._put(f"{base}/files{file.path}", file.content.encode())
        release = Release(
            release_id, source, datetime.now(UTC).isoformat(timespec="seconds"), files=[_describe(f) for f in bundle]
        )
        release.before, release.site_link_before = saved, before.site_link
        self.save(release)
        return release

    def save(self, release: Release) -> None:
        self._put(f"{self._dir(release.id)}/manifest.json", release.to_json().encode())

    def finish(self, release: Release, status: Status, error: str = "") -> None:
        release.status, release.error = status, error
        release.finished = datetime.now(UTC).isoformat(timespec="seconds")
        self.save(release)
        if status == "applied":
            self._put(f"{self.state_dir}/current", f"{release.id}\n".encode())

    def current(self) -> str | None:
        facts = self.host.read(f"{self.state_dir}/current")
        return facts.content.decode().strip() if facts is not None else None

    def all(self) -> list[Release]:
        releases = []
        for name in self.host.list_dir(f"{self.state_dir}/releases"):
            manifest = self.host.read(f"{self._dir(name)}/manifest.json")
            if manifest is not None:
                try:
                    releases.append(Release.from_json(manifest.content.decode()))
                except (ValueError, TypeError) as exc:
                    raise DeployKitError(f"unreadable release manifest {self._dir(name)}/manifest.json") from exc
        return releases

    def get(self, release_id: str) -> Release:
        for release in self.all():
            if release.id == release_id:
                return release
        raise NoRelease(f"no release {release_id!r} under {self.state_dir}/releases")

    def previous(self) -> Release:
        """The applied release before the current one: what `rollback` goes back to."""
        current = self.current()
        applied = [r for r in self.all() if r.status == "applied" and (current is None or r.id < current)]
        if not applied:
            raise NoRelease(f"nothing to roll back to: release {current or '(none)'} is the first one kept")
        return applied[-1]

    def bundle(self, release: Release) -> Bundle:
        """The files RELEASE installed, as a bundle to apply again."""
        files = []
        for entry in release.files:
            facts = self.host.read(f"{self._dir(release.id)}/files{entry['path']}")
            if facts is None:
                raise NoRelease(f"release {release.id} lost its copy of {entry['path']}")
            if hashlib.sha256(facts.content).hexdigest() != entry["sha256"]:
                raise DeployKitError(f"release {release.id}: the saved {entry['path']} does not match its checksum")
            files.append(
                RenderedFile(
                    entry["path"],
                    Kind(entry["kind"]),
                    facts.content.decode(),
                    entry["mode"],
                    entry["owner"],
                    entry["group"],
                    entry["secret"],
                )  # fmt: skip
            )
        return Bundle(tuple(files))

    def prune(self, keep: int) -> list[str]:
        """Remove all but the KEEP newest releases (never the current one)."""
        current = self.current()
        releases = self.all()
        doomed = [r.id for r in releases[: max(0, len(releases) - keep)] if r.id != current]
        for release_id in doomed:
            self.host.remove_tree(self._dir(release_id))
        return doomed


def _describe(file: RenderedFile) -> dict[str, Any]:
    return {
        "path": file.path,
        "kind": str(file.kind),
        "mode": file.mode,
        "owner": file.owner,
        "group": file.group,
        "secret": file.secret,
        "sha256": hashlib.sha256(file.content.encode()).hexdigest(),
    }
