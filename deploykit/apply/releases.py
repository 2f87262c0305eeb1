"""Releases kept on the host under ``paths.state_dir`` (root only, 0700)::

    releases/<id>/manifest.json   what was applied, from what, and how it ended
    releases/<id>/files/<path>    the files this release installed
    releases/<id>/before/<path>   the files it replaced, saved before any change
    current                       the id of the release now in place

With code releases (``apply/code.py``) a manifest also names the code folder
and code version it runs, so one record holds both versions: rollback switches
both back, and pruning a record lets its code folder go once no kept record
uses it.

``before/`` is written before anything on the host changes, so even a
deploy killed half-way leaves the previous files on disk. Ids are UTC
timestamps and sort in time order."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from deploykit.errors import DeployKitError, NoRelease
from deploykit.facts import HostState
from deploykit.host.base import FileFacts, Host
from deploykit.render.bundle import ENV_FILE_MODE, Bundle, Kind, RenderedFile

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
    #: the code this release runs: its folder under <app.working_dir>/releases and its version ("": none)
    code_release: str = ""
    code_version: str = ""

    @property
    def config_version(self) -> str:
        """A short name for the files this release installed (the sha256 of their checksums)."""
        digest = hashlib.sha256("".join(f"{f['path']}\0{f['sha256']}\n" for f in self.files).encode())
        return digest.hexdigest()[:12]

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

    def ensure_private(self) -> None:
        """The state directory exists and is root's only (0700), even when it was made looser before."""
        if not self.host.make_dir(self.state_dir, mode=0o700):
            self.host.set_mode(self.state_dir, 0o700)

    def new_id(self) -> str:
        release_id = now_id()
        while self.host.list_dir(self._dir(release_id)):
            release_id = now_id()
        return release_id

    def begin(
        self,
        bundle: Bundle,
        before: HostState,
        source: str,
        release_id: str | None = None,
        code: tuple[str, str] = ("", ""),
    ) -> Release:
        """Save what is about to be replaced and what will be installed, before any change."""
        self.ensure_private()
        release_id = release_id or self.new_id()
        base = self._dir(release_id)
        self.host.make_dir(f"{self.state_dir}/releases", mode=0o700)
        self.host.make_dir(base, mode=0o700)
        saved = []
        for file in bundle:
            facts = before.files.get(file.path)
            if facts is not None:
                self._put(f"{base}/before{file.path}", facts.content)
                saved.append(Saved(file.path, True, facts.mode, facts.owner, facts.group))
            else:
                saved.append(Saved(file.path, False))
            self._put(f"{base}/files{file.path}", file.content.encode())
        for path in before.orphans:  # the units of a deleted process or timer, which apply removes
            facts = before.files.get(path)
            if facts is not None:
                self._put(f"{base}/before{path}", facts.content)
                saved.append(Saved(path, True, facts.mode, facts.owner, facts.group))
        release = Release(
            release_id, source, datetime.now(UTC).isoformat(timespec="seconds"), files=[_describe(f) for f in bundle]
        )
        release.before, release.site_link_before = saved, before.site_link
        release.code_release, release.code_version = code
        self.save(release)
        return release

    def saved_file(self, release: Release, path: str) -> str:
        """Where RELEASE keeps its copy of the file it installs at PATH (root only)."""
        return f"{self._dir(release.id)}/files{path}"

    def discard(self, release_id: str) -> None:
        """Remove a release that was never completely saved (a disk full half-way)."""
        self.host.remove_tree(self._dir(release_id))

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
        return facts.content.decode(errors="replace").strip() if facts is not None else None

    def read(self, release_id: str) -> Release | None:
        """Release RELEASE_ID when its manifest is there and valid; None when it has none."""
        manifest = self.host.read(f"{self._dir(release_id)}/manifest.json")
        if manifest is None:
            return None
        try:
            release = Release.from_json(manifest.content.decode())
            validate(release, release_id)
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise BadRelease(f"release {release_id}: {self._dir(release_id)}/manifest.json is invalid ({exc})") from exc
        return release

    def scan(self) -> tuple[list[Release], list[str]]:
        """The valid releases, oldest first, and one warning per folder that is not one (skipped, never fatal)."""
        releases, warnings = [], []
        for name in self.host.list_dir(f"{self.state_dir}/releases"):
            try:
                release = self.read(name)
            except BadRelease as exc:
                warnings.append(f"{exc}; skipped")
                continue
            if release is None:
                warnings.append(f"release {name}: no manifest.json (an interrupted save); skipped")
            else:
                releases.append(release)
        return releases, warnings

    def all(self) -> list[Release]:
        return self.scan()[0]

    def get(self, release_id: str) -> Release:
        for release in self.all():
            if release.id == release_id:
                return release
        raise NoRelease(f"no release {release_id!r} under {self.state_dir}/releases", hint=self._list_hint())

    def previous(self) -> Release:
        """The applied release before the current one: what `rollback` goes back to."""
        current = self.current()
        applied = [r for r in self.all() if r.status == "applied" and (current is None or r.id < current)]
        if not applied:
            raise NoRelease(
                f"nothing to roll back to: release {current or '(none)'} is the first one kept", hint=self._list_hint()
            )
        return applied[-1]

    def _list_hint(self) -> str | None:
        """Where to see the releases kept: `status` reads a live host only, so a --root tree gets its folder."""
        if self.host.runs_commands:
            return None  # NoRelease's own hint: `deploykit status` lists them
        return f"The releases kept in this --root tree are the folders under {self.state_dir}/releases in it."

    def saved_before(self, release: Release) -> dict[str, FileFacts | None]:
        """The files RELEASE replaced, as they were (None: absent), from its before/ copies."""
        old: dict[str, FileFacts | None] = {}
        for saved in release.before:
            if not saved.exists:
                old[saved.path] = None
                continue
            facts = self.host.read(f"{self._dir(release.id)}/before{saved.path}")
            if facts is None:
                raise NoRelease(f"release {release.id} lost its saved copy of {saved.path}")
            old[saved.path] = FileFacts(facts.content, saved.mode, saved.owner, saved.group)
        return old

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

    def kept_code(self) -> set[str]:
        """The code folders the releases kept run (pruning code keeps these)."""
        return {r.code_release for r in self.all() if r.code_release}

    def prune(self, keep: int, busy: str | None = None) -> list[str]:
        """Remove all but the KEEP newest releases (never the current one, nor BUSY), and folders
        left without a manifest by an interrupted save. Releases with a bad manifest stay (flagged)."""
        current = self.current()
        releases = self.all()
        doomed = [r.id for r in releases[: max(0, len(releases) - keep)] if r.id != current]
        known = {r.id for r in releases}
        for name in self.host.list_dir(f"{self.state_dir}/releases"):
            if name not in known and name not in (current, busy) and self._partial(name):
                doomed.append(name)
        for release_id in doomed:
            self.host.remove_tree(self._dir(release_id))
        return doomed

    def _partial(self, name: str) -> bool:
        return self.host.read(f"{self._dir(name)}/manifest.json") is None


class BadRelease(DeployKitError):
    """A release folder whose manifest cannot be trusted."""


_ID = re.compile(r"^[0-9]{8}T[0-9]{6,12}Z$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def validate(release: Release, folder: str) -> None:
    """Raise ValueError when a manifest is not one apply could have written (modes included)."""
    if release.id != folder or not _ID.match(release.id):
        raise ValueError(f"id {release.id!r} does not match its folder")
    if release.status not in ("pending", "applied", "rolled-back", "failed"):
        raise ValueError(f"unknown status {release.status!r}")
    for entry in release.files:
        path, kind, mode = entry["path"], Kind(entry["kind"]), entry["mode"]
        if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"bad path {path!r}")
        _check_mode(path, kind, mode)
        if not all(isinstance(entry[k], str) for k in ("owner", "group")) or not isinstance(entry["secret"], bool):
            raise ValueError(f"{path}: bad owner, group or secret")
        if not isinstance(entry["sha256"], str) or not _HEX.match(entry["sha256"]):
            raise ValueError(f"{path}: bad sha256")
    if release.code_release and not _ID.match(release.code_release):
        raise ValueError(f"bad code release {release.code_release!r}")
    if not isinstance(release.code_version, str) or not re.fullmatch(r"[0-9a-f]{0,64}", release.code_version):
        raise ValueError(f"bad code version {release.code_version!r}")
    for saved in release.before:
        if saved.exists and (not isinstance(saved.mode, int) or not 0 <= saved.mode <= 0o7777):
            raise ValueError(f"{saved.path}: bad saved mode {saved.mode!r}")


def _check_mode(path: str, kind: Kind | None, mode: object) -> None:
    if kind is Kind.ENV_FILE and mode != ENV_FILE_MODE:
        raise ValueError(f"{path}: the env file must be {ENV_FILE_MODE:04o}, not {mode!r}")
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777 or mode & 0o002:
        raise ValueError(f"{path}: mode {mode!r} is not one apply writes (0..0777, not world-writable)")


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
