"""The SDK's per-class type lookups: the same answers, worked out once per class."""

from __future__ import annotations

import pulumi._types
import pytest

from unkai.components import Instance, LocalFile
from unkai.components._kind import KindResource
from unkai.langhost import _type_cache


@pytest.fixture
def sdk_types(monkeypatch):
    """The SDK's own functions, put back after the test."""
    for name in ("resource_types", "resource_pulumi_to_py_names"):
        monkeypatch.setattr(pulumi._types, name, getattr(pulumi._types, name))
    return pulumi._types


def test_each_class_gets_the_sdks_own_answer_worked_out_once(sdk_types, monkeypatch):
    classes = (KindResource, LocalFile, Instance, pulumi.CustomResource)
    expected = {cls: sdk_types.resource_types(cls) for cls in classes}
    names = {cls: sdk_types.resource_pulumi_to_py_names(cls) for cls in classes}
    calls: list[type] = []
    original = sdk_types.resource_types
    monkeypatch.setattr(sdk_types, "resource_types", lambda c: calls.append(c) or original(c))

    assert _type_cache.install() is True
    for _ in range(3):
        for cls in classes:
            assert dict(sdk_types.resource_types(cls)) == expected[cls]
            assert dict(sdk_types.resource_pulumi_to_py_names(cls)) == names[cls]
    assert calls == list(classes)  # once per class, not once per lookup


def test_a_cached_answer_cannot_be_changed_by_a_caller(sdk_types):
    _type_cache.install()
    types = sdk_types.resource_types(KindResource)
    with pytest.raises(TypeError):
        types["urn"] = int  # type: ignore[index]


def test_installing_twice_keeps_one_cache(sdk_types):
    _type_cache.install()
    first = sdk_types.resource_types
    assert _type_cache.install() is True
    assert sdk_types.resource_types is first
