"""Reading pip's progress from its real output lines (captured from pip 23 and pip 26 runs)."""

from __future__ import annotations

from deploykit.pipprogress import PipInstall, PipWheel

INSTALL = """Looking in links: /opt/wheels, wh
Processing ./wh/anyio-4.16.0-py3-none-any.whl
Processing ./wh/certifi-2026.10.19.post1-py3-none-any.whl
Processing ./wh/idna-3.20-py3-none-any.whl
INFO: pip is looking at multiple versions of anyio to determine which version is compatible.
Installing collected packages: idna, certifi, anyio
Successfully installed anyio-4.16.0 certifi-2026.10.19.post1 idna-3.20
"""

WHEEL = """Looking in indexes: https://pypi.org/simple
Processing ./proj
  Installing build dependencies: started
  Installing build dependencies: finished with status 'done'
  Preparing metadata (pyproject.toml): finished with status 'done'
Processing /opt/pypi/files/idna-3.20-py3-none-any.whl (from demoapp==1.0)
Collecting sniffio (from demoapp==1.0)
  Using cached sniffio-1.3.1-py3-none-any.whl.metadata (3.9 kB)
Saved ./out/idna-3.20-py3-none-any.whl
Saved ./out/sniffio-1.3.1-py3-none-any.whl
Building wheels for collected packages: demoapp
  Building wheel for demoapp (pyproject.toml): started
  Building wheel for demoapp (pyproject.toml): finished with status 'done'
  Created wheel for demoapp: filename=demoapp-1.0-py3-none-any.whl size=1105 sha256=925c
Successfully built demoapp
"""


def test_an_install_counts_the_wheels_read_then_names_the_install() -> None:
    seen: list[tuple[str, float | None, float | None]] = []
    reader = PipInstall(lambda phase, done=None, total=None: seen.append((phase, done, total)), 3)
    for line in INSTALL.splitlines():
        reader.line(line)
    assert seen == [
        ("reading the wheels", 1, 3),
        ("reading the wheels", 2, 3),
        ("reading the wheels", 3, 3),
        ("installing 3 packages", None, None),
    ]


def test_more_processing_lines_than_wheels_never_count_past_the_total() -> None:
    seen: list[tuple[str, float | None, float | None]] = []
    reader = PipInstall(lambda phase, done=None, total=None: seen.append((phase, done, total)), 1)
    for _ in range(3):
        reader.line("Processing ./wh/x-1-py3-none-any.whl")
    reader.line("Installing collected packages: x")
    assert seen[-2:] == [("reading the wheels", 1, 1), ("installing 1 package", None, None)]


def test_a_build_counts_packages_found_then_wheels_saved_and_names_the_wheel_it_builds() -> None:
    seen: list[tuple[str, float | None, float | None]] = []
    reader = PipWheel(lambda phase, done=None, total=None: seen.append((phase, done, total)))
    for line in WHEEL.splitlines():
        reader.line(line)
    assert seen == [
        ("resolving", 1, None),
        ("resolving", 2, None),
        ("resolving", 3, None),
        ("saving wheels", 1, 3),
        ("saving wheels", 2, 3),
        ("building the wheel of demoapp", 2, 3),
        ("saving wheels", 3, 3),
    ]


def test_lines_pip_words_differently_show_nothing_rather_than_something_wrong() -> None:
    seen: list[tuple[str, float | None, float | None]] = []
    reader = PipInstall(lambda phase, done=None, total=None: seen.append((phase, done, total)), 2)
    for line in ("Verarbeite ./wh/a.whl", "", "   ", "ERROR: No matching distribution found for b"):
        reader.line(line)
    assert seen == []
