from __future__ import annotations

from typing import Any

import pytest
import yaml

from unkai.errors import RenderError
from unkai.model import Environment
from unkai.render import (
    CLOUD_INIT_FINISHED_MARKER,
    DEFAULT_USER,
    instance_mac,
    render_cloud_init,
    render_meta_data,
    render_network_config,
    render_user_data,
)
from unkai.render.filters import content_hash


def _instance(env: Environment, name: str) -> Any:
    return next(i for i in env.all_instances() if i.name == name)


def test_user_data_merges_instance_data_with_unkai_keys(env: Environment) -> None:
    db = _instance(env, "db")
    text = render_user_data(db, env)
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["hostname"] == "db"
    assert config["fqdn"] == "db.dev.unkai.internal"
    assert config["packages"] == ["postgresql"]
    assert config["write_files"][0]["content"] == "database host\nmanaged by unkai\n"
    [user] = config["users"]
    assert user["name"] == DEFAULT_USER
    assert user["lock_passwd"] is True
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert user["ssh_authorized_keys"] == list(db.ssh_keys)
    assert config["final_message"].startswith(CLOUD_INIT_FINISHED_MARKER)
    assert "phone_home" not in config
    # Secrets are installed from the first-boot seed: the user-data names them only.
    (install,) = config["bootcmd"]
    assert install[:2] == ["sh", "-c"]
    assert "# secrets: DB_PASSWORD from db-password" in install[2]
    assert "install -m 0600 -o root -g root" in install[2]


def test_user_data_may_add_users_and_override_defaults(sample_document: dict[str, Any]) -> None:
    sample_document["instances"]["gw"]["user_data"] = {
        "users": ["default", {"name": "ops"}],
        "ssh_pwauth": True,
    }
    env = Environment.model_validate(sample_document)
    config = yaml.safe_load(render_user_data(_instance(env, "gw"), env))
    assert [u if isinstance(u, str) else u["name"] for u in config["users"]] == [
        "unkai",
        "default",
        "ops",
    ]
    assert config["ssh_pwauth"] is True
    assert "ssh_authorized_keys" not in config["users"][0]  # gw has no keys


@pytest.mark.parametrize(
    ("user_data", "message"),
    [
        ({"hostname": "other"}, "hostname are set by unkai"),
        ({"final_message": "x"}, "final_message are set by unkai"),
        ({"users": {"name": "x"}}, "users must be a list"),
        ({"users": [{"name": "unkai"}]}, "unkai's default user"),
    ],
)
def test_user_data_conflicts(
    sample_document: dict[str, Any], user_data: dict[str, Any], message: str
) -> None:
    sample_document["instances"]["gw"]["user_data"] = user_data
    env = Environment.model_validate(sample_document)
    with pytest.raises(RenderError, match=message):
        render_user_data(_instance(env, "gw"), env)


def test_no_domain_means_no_fqdn(sample_document: dict[str, Any]) -> None:
    sample_document["settings"] = {"ssh_port_base": 2200}
    env = Environment.model_validate(sample_document)
    config = yaml.safe_load(render_user_data(_instance(env, "gw"), env))
    assert "fqdn" not in config and config["hostname"] == "gw"


def test_network_config_matches_nics_by_mac(env: Environment) -> None:
    db = _instance(env, "db")
    config = yaml.safe_load(render_network_config(db, env))
    assert config == {
        "version": 2,
        "ethernets": {
            "nic0": {
                "dhcp4": True,
                "match": {"macaddress": instance_mac(env.name, db.name, "lan")},
            },
            "nic1": {
                "dhcp4": True,
                "match": {"macaddress": instance_mac(env.name, db.name, "backend")},
            },
        },
    }


def test_meta_data_instance_id_follows_cloud_init_content(
    sample_document: dict[str, Any],
) -> None:
    env = Environment.model_validate(sample_document)
    db = _instance(env, "db")
    files = render_cloud_init(db, env)
    meta = yaml.safe_load(files["meta-data"])
    assert meta == {
        "instance-id": "iid-" + content_hash(files["user-data"] + "\0" + files["network-config"]),
        "local-hostname": "db",
    }
    assert render_meta_data(db, env) == files["meta-data"]
    # A memory change does not touch cloud-init; a user-data change does.
    sample_document["instances"]["db"]["machine_type"] = "n2-highmem-4"
    bigger = Environment.model_validate(sample_document)
    assert render_meta_data(_instance(bigger, "db"), bigger) == files["meta-data"]
    sample_document["instances"]["db"]["user_data"]["packages"] = ["postgresql", "htop"]
    changed = Environment.model_validate(sample_document)
    assert render_meta_data(_instance(changed, "db"), changed) != files["meta-data"]
