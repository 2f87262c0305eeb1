"""What the next run does with an apply that was killed (its journal is still
on disk): undo it, back to the last known-good state. See ``journal`` for why
undo rather than finish.

``pending_recovery`` only reads (``plan`` uses it to show what will happen and
to plan from the state after the undo); ``Recovery.undo`` changes the host."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from deploykit.apply import journal as journals
from deploykit.apply.journal import Journal, Prepared
from deploykit.apply.releases import Release, ReleaseStore
from deploykit.apply.restore import restore
from deploykit.errors import DeployKitError
from deploykit.facts import HostState, UnitFacts
from deploykit.host.base import FileFacts, Host


@dataclass(frozen=True)
class Recovery:
    journal: Journal
    #: the release the killed apply was recording (None: killed while saving it, before any file was written)
    release: Release | None
    old: dict[str, FileFacts | None] = field(default_factory=dict)

    def describe(self) -> str:
        return self.journal.describe()

    def overlay(self, state: HostState) -> HostState:
        """STATE as it will be once the undo ran: what plan compares the bundle with."""
        files = dict(state.files)
        for path in self.journal.written:
            if path in files:
                files[path] = self.old.get(path)
        link = self.journal.site_link_before if self.journal.links_site else state.site_link
        units = dict(state.units)
        for unit in self.journal.units:
            if unit.name in self.journal.touched and unit.name in units:
                units[unit.name] = UnitFacts(unit.enabled, unit.active)
        return HostState(files, link, units, state.tracks_owners, recovery=self.describe(), orphans=state.orphans)

    def undo(self, host: Host, store: ReleaseStore) -> list[str]:
        """Restore, close the release as rolled back, drop the journal; the problems when not all came back."""
        problems = restore(host, self.journal, self.old)
        if problems:
            return problems  # the journal stays: the next run tries again
        if self.release is None:
            store.discard(self.journal.release)
        elif self.release.status == "applied":
            store.finish(self.release, "applied")  # killed between its manifest and `current`: write both again
        elif self.release.status in ("pending", "failed"):
            why = f"interrupted during {self.journal.step!r}; undone by the next run"
            store.finish(self.release, "rolled-back", why)
        journals.clear(host, store.state_dir)
        return []


def pending_recovery(host: Host, store: ReleaseStore) -> Recovery | None:
    """The undo an interrupted apply left to do, or None."""
    journal = journals.read(host, store.state_dir)
    if journal is None:
        return None
    release = store.read(journal.release)  # a bad manifest raises: its before/ copies cannot be trusted
    if release is None:
        if journal.written:
            raise DeployKitError(
                f"an interrupted apply wrote files, but its release {journal.release} has no manifest: "
                "the previous files cannot be restored automatically",
                hint=f"Put the files right by hand, then remove {journals.path(store.state_dir)}.",
            )
        return Recovery(journal, None)
    if release.status == "applied":
        # killed after the release was recorded as applied: the transaction is complete, only the journal is left
        return Recovery(replace(journal, written=(), links_site=False, touched=(), daemon_reload=False,
                                nginx_reload=False, prepared=Prepared(), code_switched=False), release)  # fmt: skip
    return Recovery(journal, release, store.saved_before(release))
