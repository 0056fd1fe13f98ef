import asyncio
import os

import pytest
from pulumi.provider.experimental import provider as p
from pulumi.provider.experimental.property_value import PropertyValue

from unkai.errors import ConfigError
from unkai.provider import Props, UnkaiProvider, wrap
from unkai.provider.resources import LocalFile

URN = "urn:pulumi:dev::proj::unkai:local:File::greeting"


def test_check_normalises_mode_and_rejects_bad_input():
    res = LocalFile()
    ok = res.check(Props({"path": "/tmp/x", "content": "hi", "mode": "600"}))
    assert ok["mode"] == "0600"
    with pytest.raises(ConfigError) as err:
        res.check(Props({"path": "relative", "content": "hi"}))
    assert err.value.key_path == "path"
    with pytest.raises(ConfigError) as err:
        res.check(Props({"path": "/tmp/x", "content": "hi", "mode": "rwx"}))
    assert err.value.key_path == "mode" and "0777" in str(err.value)


def test_diff_updates_content_in_place_and_replaces_on_path():
    res = LocalFile()
    old = Props({"path": "/a", "content": "x", "mode": "0644", "sha256": "..", "size": 1.0})
    same = res.diff(old, Props({"path": "/a", "content": "x", "mode": "0644"}))
    assert not same.has_changes
    content = res.diff(old, Props({"path": "/a", "content": "y", "mode": "0644"}))
    assert content.changed == ("content",) and content.replaces == ()
    moved = res.diff(old, Props({"path": "/b", "content": "x", "mode": "0644"}))
    assert moved.replaces == ("path",)
    assert "cannot move" in moved.reasons["path"]


def test_create_read_update_delete_on_a_real_file(tmp_path):
    res = LocalFile()
    target = tmp_path / "sub" / "f.txt"
    rid, out = res.create(Props({"path": str(target), "content": "one", "mode": "0600"}))
    assert rid == str(target)
    assert target.read_text() == "one" and (target.stat().st_mode & 0o777) == 0o600
    assert out["size"] == 3 and len(out["sha256"]) == 64
    target.write_text("drifted")
    assert res.read(rid, Props(out))["content"] == "drifted"
    res.update(rid, Props(out), Props({"path": rid, "content": "two", "mode": "0644"}))
    assert target.read_text() == "two" and (target.stat().st_mode & 0o777) == 0o644
    res.delete(rid, Props(out))
    assert not target.exists()
    assert res.read(rid, Props(out)) is None
    res.delete(rid, Props(out))  # already gone is fine


def test_provider_reports_check_failures_by_property_and_keeps_secrets(tmp_path):
    provider = UnkaiProvider([LocalFile()])
    bad = asyncio.run(
        provider.check(p.CheckRequest(URN, {}, wrap({"path": "rel", "content": "x"}), b""))
    )
    assert bad.failures and bad.failures[0].property == "path"
    assert "absolute" in bad.failures[0].reason

    inputs = {
        "path": PropertyValue(str(tmp_path / "s.txt")),
        "content": PropertyValue("top secret", is_secret=True),
        "mode": PropertyValue("0600"),
    }
    created = asyncio.run(provider.create(p.CreateRequest(URN, inputs, 60, False)))
    assert created.properties["content"].is_secret
    assert not created.properties["path"].is_secret
    assert (os.stat(tmp_path / "s.txt").st_mode & 0o777) == 0o600


def test_provider_names_unknown_types():
    provider = UnkaiProvider([LocalFile()])
    req = p.CheckRequest("urn:pulumi:dev::proj::unkai:x:Nope::n", {}, {}, b"")
    with pytest.raises(Exception, match="unknown resource type unkai:x:Nope"):
        asyncio.run(provider.check(req))


def test_provider_finds_the_handler_of_a_child_resource(tmp_path):
    provider = UnkaiProvider([LocalFile()])
    urn = "urn:pulumi:dev::proj::unkai:index:Cloud$unkai:local:File::f"
    ok = asyncio.run(
        provider.check(p.CheckRequest(urn, {}, wrap({"path": str(tmp_path / "f"), "content": ""}), b""))
    )
    assert not ok.failures
