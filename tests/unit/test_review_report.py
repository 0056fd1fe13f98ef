"""``unkai review``'s comparisons and its report: pure functions of both sides."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from unkai.cli.review import _side, compare
from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.placement import capacity_report, place
from unkai.review import (
    EnvironmentReview,
    FileChange,
    PolicyResult,
    ResourceChange,
    Review,
    base_checkout,
    capacity_changes,
    environment_changes,
    file_changes,
    markdown,
)
from unkai.review._report import HIDDEN, MAX_REPORT_CHARS

ROOT = Path(__file__).resolve().parents[2]


def _local(**update):
    env = load_environment("local", root=ROOT)
    return env.model_copy(update=update) if update else env


def test_file_changes_name_each_added_removed_and_changed_artifact_and_hide_secret_values():
    before = {PurePosixPath("a.xml"): "<a/>\n", PurePosixPath("gone"): "x",
              PurePosixPath("index.json"): "1"}  # fmt: skip
    after = {PurePosixPath("a.xml"): "<a>\n</a>\n", PurePosixPath("new/user-data"):
             "hostname: db\npassword: hunter2-in-clear\nENV API_TOKEN=abc\n",
             PurePosixPath("index.json"): "2"}  # fmt: skip
    changes = {c.path: c for c in file_changes(before, after)}
    assert {p: c.op for p, c in changes.items()} == {
        "a.xml": "change", "gone": "remove", "new/user-data": "add"
    }  # fmt: skip
    assert "-<a/>" in changes["a.xml"].diff and "+</a>" in changes["a.xml"].diff
    added = changes["new/user-data"].diff
    assert "+hostname: db" in added
    assert f"+password: {HIDDEN}" in added and "hunter2" not in added
    assert f"+ENV API_TOKEN={HIDDEN}" in added and "abc" not in added
    assert file_changes(before, before) == []


def test_environment_changes_hide_values_under_secret_keys_but_not_policy_names():
    env = _local()
    app = env.instances["db"]
    typed = app.model_copy(update={"user_data": {"password": "hunter2-in-clear", "x": 1}})
    after = env.model_copy(update={"instances": {**env.instances, "db": typed},
                                   "policies": {"secret-values": "mandatory"}})  # fmt: skip
    changes = {c["path"]: c for c in environment_changes(env, after)}
    assert changes["policies.secret-values"] == {
        "path": "policies.secret-values", "op": "add", "old": None, "new": "mandatory"
    }  # fmt: skip
    shown = json.dumps(changes)
    assert "hunter2" not in shown and HIDDEN in shown and '"x": 1' in shown
    assert environment_changes(env, env) == []
    assert environment_changes(None, env) == []


def test_capacity_changes_pair_each_host_s_allocation_before_and_after():
    env = _local()
    bigger = load_environment("local", root=ROOT, overrides={
        "instances": {"db": {"machine_type": "custom-2-4096"}}})  # fmt: skip
    before = capacity_report(env, place(env))
    after = capacity_report(bigger, place(bigger))
    (host,) = capacity_changes(before, after)
    assert host.host == "localhost" and host.changed
    assert host.after["memory_mb"][0] - host.before["memory_mb"][0] == 4096 - 1024
    (same,) = capacity_changes(before, before)
    assert not same.changed
    (new,) = capacity_changes(None, after)
    assert new.before is None and new.changed


def _review(**env) -> Review:
    return Review(base="main (abc)", head="def", environments=[EnvironmentReview(
        name="prod", status="changed", **env)], unchanged=["dev"])  # fmt: skip


def test_the_outcome_and_exit_status_follow_changes_and_mandatory_policies():
    assert Review(base="b", head="h", environments=[], unchanged=["dev"]).exit_code == 0
    assert _review(resources=[]).exit_code == 3
    advisory = PolicyResult("p", "pinned-images", "advisory", "prod-api", "not pinned")
    assert _review(policies=[advisory]).outcome == "changes"
    mandatory = PolicyResult("p", "secret-values", "mandatory", "prod-db", "a password")
    assert _review(policies=[advisory, mandatory]).exit_code == 4
    assert _review(problems=["prod does not load"]).outcome == "failed"


def test_the_markdown_names_each_change_with_its_reason_and_each_violation():
    replace = ResourceChange("vms", "prod-db", "unkai:compute:Instance", "replace",
                             {"image_volume_path": {"before": None, "after": None}},
                             ["image_volume_path: a new image"])  # fmt: skip
    migrate = ResourceChange("vms", "prod-web-0", "unkai:compute:Instance", "migrate",
                             {"host": {"before": "kvm-1", "after": "kvm-2"}})  # fmt: skip
    text = markdown(_review(
        environment=[{"path": "vm_images.base.version", "op": "change", "old": "1", "new": "2"}],
        resources=[replace, migrate],
        policies=[PolicyResult("unkai-builtin", "secret-values", "mandatory", "prod-db", "pw")],
        artifacts=[FileChange("libvirt/domains/db.xml", "change", "-a\n+b")],
    ))  # fmt: skip
    assert text.startswith("## unkai review: ❌ failed")
    assert "| `prod` | ❌ |  |  | 1 | 1 |  | 1 mandatory |" in text
    assert "`vm_images.base.version`: `1` → `2`" in text
    replaced = (
        "| `prod-db` | vms | **replace** | `image_volume_path` | image_volume_path: a new image |"
    )
    assert replaced in text
    assert "| `prod-web-0` | vms | **migrate** | `host`: kvm-1 → kvm-2 | - |" in text
    assert "| ❌ mandatory | unkai-builtin | secret-values | `prod-db` | pw |" in text
    assert "```diff\n-a\n+b\n```" in text and "Unchanged: `dev`." in text


def test_a_report_with_huge_diffs_stays_within_a_comment_s_room():
    diff = "\n".join(f"+line {i} " + "x" * 100 for i in range(120))
    files = [FileChange(f"f{i}", "change", diff) for i in range(20)]
    text = markdown(_review(artifacts=files, resources=[]))
    assert len(text) <= MAX_REPORT_CHARS
    assert "diff left out, the comment is full" in text and text.endswith("</details>\n")


def test_an_environment_the_change_does_not_touch_is_left_out(tmp_path):
    side = _side("local", ROOT, {"local"}, "tcg")
    assert side.error is None and side.tree and side.capacity
    assert compare("local", side, side, in_base=True, in_head=True) is None
    gone = compare("local", side, _side("local", ROOT, set(), "tcg"), in_base=True,
                   in_head=False)  # fmt: skip
    assert gone is not None and gone.status == "removed" and "unkai destroy local" in gone.notes[0]


def _git(folder: Path, *args: str) -> None:
    who = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", *who, *args], cwd=folder, check=True, capture_output=True)


def test_the_base_is_the_project_at_the_ref_and_a_bad_ref_is_refused(tmp_path):
    project = tmp_path / "repo" / "cloud"
    project.mkdir(parents=True)
    (project / "unkai.toml").write_text("[project]\nname = 'x'\n")
    _git(tmp_path / "repo", "init", "-q", "-b", "main")
    _git(tmp_path / "repo", "add", "-A")
    _git(tmp_path / "repo", "commit", "-q", "-m", "one")
    (project / "unkai.toml").write_text("changed")
    with base_checkout(project, "main") as checkout:
        assert (checkout.root / "unkai.toml").read_text() == "[project]\nname = 'x'\n"
        assert checkout.label.startswith("main (")
        folder = checkout.root
    assert not folder.exists()
    with (
        pytest.raises(ConfigError, match="no commit has this name") as caught,
        base_checkout(project, "no-such-branch"),
    ):
        pass
    assert "--base" in str(caught.value)
    with (
        pytest.raises(ConfigError, match="not inside a Git repository"),
        base_checkout(tmp_path, "main"),
    ):
        pass


def test_a_promotion_is_a_change_review_shows_for_the_target_alone(tmp_path):
    """``unkai env promote staging prod`` then ``unkai review``: prod's images change."""
    import sys

    import yaml

    from unkai.cli.init import init

    unkai = Path(sys.executable).parent / "unkai"
    project = tmp_path / "acme"
    init(project, name=None, python=False)
    for name, version in (("staging", "2"), ("prod", "1")):
        doc = {"extends": "local", "vm_images": {"app-image": {"version": version}}}
        (project / "environments" / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "staging tries app-image 2")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(unkai), *args, "--root", str(project)], capture_output=True,
                              text=True, timeout=120, cwd=project)  # fmt: skip

    assert cli("env", "promote", "staging", "prod").returncode == 0
    shown = cli("review", "--base", "main", "--no-preview", "--json")
    assert shown.returncode == 3, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    (prod,) = report["environments"]
    assert prod["name"] == "prod" and report["unchanged"] == ["base", "local", "staging"]
    assert {"path": "vm_images.app-image.version", "op": "change", "old": "1", "new": "2"} in (
        prod["environment"]
    )
    assert any(f["path"] == "libvirt/domains/app.xml" for f in prod["artifacts"])
    assert prod["resources"] is None and "--no-preview" in prod["notes"][0]


def test_the_chart_draws_each_changed_host_before_and_after(tmp_path):
    from unkai.cli._plan_chart import draw_capacity_change

    env = _local()
    bigger = load_environment("local", root=ROOT, overrides={
        "instances": {"db": {"machine_type": "custom-2-4096"}}})  # fmt: skip
    capacity = capacity_changes(capacity_report(env, place(env)),
                                capacity_report(bigger, place(bigger)))  # fmt: skip
    chart = tmp_path / "capacity.png"
    draw_capacity_change(_review(capacity=capacity), chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000


def test_a_base_this_unkai_refuses_is_said_and_the_head_shown_alone():
    from unkai.cli.review import _Side

    head = _side("local", ROOT, {"local"}, "tcg")
    refused = _Side(error="does not load: environments/base.yaml:67: no such version")
    review = compare("local", refused, head, in_base=True, in_head=True)
    assert review is not None and review.status == "changed" and not review.problems
    assert review.notes == [
        "At the base, local does not load: environments/base.yaml:67: no such version."
        " Only the working tree's side is shown."
    ]
    assert all(host.before is None for host in review.capacity)
