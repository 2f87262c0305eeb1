"""ssh:// URLs and the host sources, parsed strictly before anything runs."""

from __future__ import annotations

import pytest

from deploykit.errors import SettingsError, UsageError
from deploykit.remote.target import SshTarget, choose, parse_ssh, resolve
from deploykit.settings.load import Source, validate


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ssh://web1", SshTarget("web1")),
        ("ssh://deploy@web1.example.com", SshTarget("web1.example.com", "deploy")),
        ("ssh://root@10.0.0.2:2222", SshTarget("10.0.0.2", "root", 2222)),
        ("ssh://[2001:db8::1]", SshTarget("2001:db8::1")),
        ("ssh://ops_1@[2001:db8::1]:22", SshTarget("2001:db8::1", "ops_1", 22)),
        ("ssh://h:65535", SshTarget("h", None, 65535)),
        ("ssh://h:1", SshTarget("h", None, 1)),
    ],
)
def test_good_urls_parse_and_print_back(url: str, expected: SshTarget) -> None:
    assert parse_ssh(url) == expected
    assert str(expected) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("web1", "not an ssh:// URL"),
        ("http://web1", "not an ssh:// URL"),
        ("ssh://", "no host name"),
        ("ssh://h:0", "port 0 is out of range"),
        ("ssh://h:65536", "port 65536 is out of range"),
        ("ssh://h:99999999999", "out of range"),
        ("ssh://h:", "port '' is not a number"),
        ("ssh://h:ssh", "port 'ssh' is not a number"),
        ("ssh://h;reboot", "';'"),
        ("ssh://h$(touch /tmp/x)", "'$'"),
        ("ssh://h`id`", "'`'"),
        ("ssh://h/path", "'/'"),
        ("ssh://user:pw@h", "user 'user:pw' is not a valid login name"),
        ("ssh://h?x=1", "'?'"),
        ("ssh://h#frag", "'#'"),
        ("ssh://a b", "' '"),
        ("ssh://-oProxyCommand=x", "'='"),
        ("ssh://-oProxyCommand", "is not a host name"),
        ("ssh://-l@h", "user '-l' is not a valid login name"),
        ("ssh://h..example", "is not a host name"),
        ("ssh://h-.example", "is not a host name"),
        ("ssh://[::1", "closing ']'"),
        ("ssh://[nothex]", "is not an IPv6 address"),
        ("ssh://[::1]x", "unexpected 'x'"),
        ("ssh://h]", "brackets are only for an IPv6 address"),
        ("ssh://ü.example", "'ü'"),
        ("ssh://h\n", "'\\n'"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_ssh(url, "$DEPLOYKIT_HOST")
    assert caught.value.message.startswith(f"$DEPLOYKIT_HOST {url!r}: ")
    assert why in caught.value.message
    assert caught.value.exit_code == 2


def test_flags_win_over_the_environment_and_the_file() -> None:
    env = {"DEPLOYKIT_HOST": "ssh://env1, ssh://env2"}
    assert resolve(["ssh://flag"], env, ["ssh://file"]) == ("--host", ["ssh://flag"])
    assert resolve(None, env, ["ssh://file"]) == ("$DEPLOYKIT_HOST", ["ssh://env1", "ssh://env2"])
    assert resolve(None, {}, ["ssh://file"]) == ("deploy.hosts", ["ssh://file"])
    assert resolve(None, {"DEPLOYKIT_HOST": " "}, []) == ("", [])


def test_choose_splits_local_targets_from_ssh_ones() -> None:
    assert choose(None, {}, []) == (None, [])
    assert choose(["local"], {}, ["ssh://a"]) == ("local", [])
    assert choose(["nsenter:12"], {}, []) == ("nsenter:12", [])
    assert choose(None, {}, ["ssh://a", "ssh://b:2"]) == (None, [SshTarget("a"), SshTarget("b", None, 2)])
    assert choose(None, {"DEPLOYKIT_HOST": "ssh://a"}, [], root_given=True) == (None, [])  # --root wins


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["ssh://a", "local"], "--host 'local': only ssh:// hosts can be combined"),
        (["ssh://a", "ssh://a"], "--host names ssh://a twice"),
        (["ssh://a", "ssh://b:x"], "--host 'ssh://b:x': port 'x' is not a number"),
    ],
)
def test_mixed_repeated_or_bad_host_lists_are_refused(flags: list[str], message: str) -> None:
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        choose(flags, {}, [])


def test_root_and_an_ssh_flag_conflict() -> None:
    with pytest.raises(UsageError, match="--root and an ssh:// --host"):
        choose(["ssh://a"], {}, [], root_given=True)


def test_deploy_hosts_in_the_file_are_checked_and_blamed_on_it() -> None:
    good = validate([Source("deploykit.toml", {"app": {"name": "demo"}, "deploy": {"hosts": ["ssh://a", "ssh://b"]}})])
    assert good.settings.deploy.hosts == ["ssh://a", "ssh://b"]
    bad = Source("deploykit.toml", {"app": {"name": "demo"}, "deploy": {"hosts": ["ssh://a", "ssh://b;rm -rf /"]}})
    with pytest.raises(SettingsError) as caught:
        validate([bad])
    assert "deploykit.toml: deploy.hosts = " in caught.value.message
    assert "';'" in caught.value.message
    twice = Source("deploykit.toml", {"app": {"name": "demo"}, "deploy": {"hosts": ["ssh://a", "ssh://a"]}})
    with pytest.raises(SettingsError, match="listed twice"):
        validate([twice])
