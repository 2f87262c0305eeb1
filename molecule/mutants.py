"""Proof that the molecule scenario catches a broken role. Each mutant is a copy
of the deploykit.stack collection whose role has one deliberate bug; against
hosts converged by the real collection, molecule runs the step that must notice,
and that step must fail.

    .venv/bin/python molecule/mutants.py        (or make test-fleet-mutants; root, ~4 minutes)

Prints each mutant with the lines that caught it; exits 0 when every mutant was
caught, 1 when one survived. The working tree is never modified: molecule.yml
takes the collection from DEPLOYKIT_MOLECULE_TREE/ansible/collections.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = Path("ansible") / "collections"
STACK = COLLECTIONS / "ansible_collections" / "deploykit" / "stack"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # in the role (roles/deploykit)
    old: str
    new: str
    step: str  # the molecule step that must fail
    evidence: str  # a line of its output that says why


MUTANTS = (
    Mutant("apply always reports changed", "tasks/apply.yml",
           "  changed_when: ((deploykit_apply.stdout or '{}') | from_json).changed | default(false)\n",
           "  changed_when: true\n", "idempotence", "Idempotence test failed"),
    Mutant("pip install reports changed on every run", "tasks/install.yml",
           "  changed_when: \"'Successfully installed' in deploykit_pip.stdout\"\n", "", "idempotence",
           "Idempotence test failed"),
    Mutant("apply never reports changed", "tasks/apply.yml",
           "  changed_when: ((deploykit_apply.stdout or '{}') | from_json).changed | default(false)\n",
           "  changed_when: false\n", "side-effect", '"assertion": "failed_gate.stdout is search(\'TASK'),
    Mutant("a failed apply does not fail the host", "tasks/apply.yml",
           "  when: not deploykit_report.ok or deploykit_apply.rc != 0\n", "  when: false\n", "side-effect",
           '"failed_when_result": true'),
)  # fmt: skip


def molecule(*args: str, tree: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
    env.pop("DEPLOYKIT_MOLECULE_TREE", None)  # create and converge: the collection in this source tree
    if tree is not None:
        env["DEPLOYKIT_MOLECULE_TREE"] = str(tree)
    return subprocess.run([str(ROOT / ".venv/bin/molecule"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip


def broken_copy(mutant: Mutant, scratch: Path) -> Path:
    top = scratch / mutant.name.replace(" ", "-")
    shutil.copytree(ROOT / STACK, top / STACK, ignore=shutil.ignore_patterns("__pycache__"))
    target = top / STACK / "roles" / "deploykit" / mutant.file
    text = target.read_text()
    if text.count(mutant.old) != 1:
        raise SystemExit(f"mutant {mutant.name!r}: {mutant.file} no longer holds the line it breaks")
    target.write_text(text.replace(mutant.old, mutant.new))
    return top


def main() -> int:
    for step in ("create", "converge"):
        done = molecule(step)
        if done.returncode != 0:
            print(done.stdout[-4000:] + done.stderr[-4000:])
            molecule("destroy")
            return 1
    survived = []
    try:
        with tempfile.TemporaryDirectory(prefix="deploykit-mutants-") as scratch:
            for mutant in MUTANTS:
                done = molecule(mutant.step, tree=broken_copy(mutant, Path(scratch)))
                output = done.stdout + done.stderr
                caught = done.returncode != 0 and mutant.evidence in output
                print(f"{'CAUGHT ' if caught else 'SURVIVED'} {mutant.name}: molecule {mutant.step} exit "
                      f"{done.returncode}")  # fmt: skip
                for line in output.splitlines():
                    if mutant.evidence in line or "changed: [host" in line or line.startswith("CRITICAL"):
                        print(f"    {line.strip()[:200]}")
                if not caught:
                    survived.append(mutant.name)
    finally:
        molecule("destroy")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
