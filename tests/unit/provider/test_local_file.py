import asyncio
import os

import pytest
from pulumi.provider.experimental import provider as p
from pulumi.provider.experimental.property_value import PropertyValue

from unkai.errors import ConfigError
from unkai.kinds import LocalFileInputs, LocalFileState
from unkai.provider import Props, UnkaiProvider, unwrap, wrap
from unkai.provider.resources import LocalFile

URN = "urn:pulumi:dev::proj::unkai:local:File::greeting"


def test_check_normalises_mode_and_rejects_bad_input():
    res = LocalFile()
    ok = res.check(Props({"path": "/tmp/x", "content": "hi", "mode": "600"}))
    assert ok == {"path": "/tmp/x", "content": "hi", "mode": "0600"}
    assert res.check(Props({"path": "/tmp/x", "content": "hi"}))["mode"] == "0644"
    with pytest.raises(ConfigError) as err:
        res.check(Props({"path": "relative", "content": "hi"}))
    assert err.value.key_path == "path"
    assert str(err.value) == "path: must be an absolute path (got 'relative'); allowed: /abs/path"
    with pytest.raises(ConfigError) as err:
        res.check(Props({"path": "/tmp/x", "content": "hi", "mode": "rwx"}))
    assert err.value.key_path == "mode" and "0777" in str(err.value)
    with pytest.raises(ConfigError) as err:
        res.check(Props({"path": "/tmp/x", "content": "hi", "mod": "0600"}))
    assert err.value.key_path == "mod" and "did you mean 'mode'?" in str(err.value)


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
    rid, out = res.create(LocalFileInputs(path=str(target), content="one", mode="0600"))
    assert rid == str(target)
    assert isinstance(out, LocalFileState)
    assert target.read_text() == "one" and (target.stat().st_mode & 0o777) == 0o600
    assert out.size == 3 and out.sha256 is not None and len(out.sha256) == 64
    target.write_text("drifted")
    read = res.read(rid, out)
    assert read is not None and read.content == "drifted" and read.size == 7
    res.update(rid, out, LocalFileInputs(path=rid, content="two", mode="0644"))
    assert target.read_text() == "two" and (target.stat().st_mode & 0o777) == 0o644
    res.delete(rid, out)
    assert not target.exists()
    assert res.read(rid, out) is None
    res.delete(rid, out)  # already gone is fine


def test_provider_reports_check_failures_by_property_and_keeps_secrets(tmp_path):
    provider = UnkaiProvider([LocalFile()])
    bad = asyncio.run(
        provider.check(p.CheckRequest(URN, {}, wrap({"path": "rel", "content": "x"}), b""))
    )
    assert [f.property for f in bad.failures] == ["path"]
    assert bad.failures[0].reason == "must be an absolute path (got 'rel'); allowed: /abs/path"

    several = asyncio.run(
        provider.check(p.CheckRequest(URN, {}, wrap({"path": "rel", "mod": "0600"}), b""))
    )
    reasons = {f.property: f.reason for f in several.failures}
    assert set(reasons) == {"path", "content", "mod"}
    assert reasons["mod"].startswith("unknown key (did you mean 'mode'?)")

    inputs = {
        "path": PropertyValue(str(tmp_path / "s.txt")),
        "content": PropertyValue("top secret", is_secret=True),
        "mode": PropertyValue("0600"),
    }
    checked = asyncio.run(provider.check(p.CheckRequest(URN, {}, inputs, b"")))
    assert not checked.failures and checked.inputs["content"].is_secret
    created = asyncio.run(provider.create(p.CreateRequest(URN, checked.inputs, 60, False)))
    assert created.properties["content"].is_secret
    assert not created.properties["path"].is_secret
    assert (os.stat(tmp_path / "s.txt").st_mode & 0o777) == 0o600

    # Read through the engine's path: the state parsed into the kind, secrecy kept.
    read = asyncio.run(
        provider.read(p.ReadRequest(URN, created.resource_id, created.properties, inputs))
    )
    assert read.resource_id == created.resource_id
    assert read.properties["content"].is_secret and read.inputs["content"].is_secret
    assert set(read.inputs) == {"path", "content", "mode"}
    assert unwrap(read.properties).values["size"] == len("top secret")


def test_provider_names_unknown_types():
    provider = UnkaiProvider([LocalFile()])
    req = p.CheckRequest("urn:pulumi:dev::proj::unkai:x:Nope::n", {}, {}, b"")
    with pytest.raises(Exception, match="unknown resource type unkai:x:Nope"):
        asyncio.run(provider.check(req))


def test_provider_finds_the_handler_of_a_child_resource(tmp_path):
    provider = UnkaiProvider([LocalFile()])
    urn = "urn:pulumi:dev::proj::unkai:index:Cloud$unkai:local:File::f"
    ok = asyncio.run(
        provider.check(
            p.CheckRequest(urn, {}, wrap({"path": str(tmp_path / "f"), "content": ""}), b"")
        )
    )
    assert not ok.failures
