from pulumi.provider.experimental.property_value import PropertyValue

from unkai import kinds
from unkai.provider import UNKNOWN, unwrap, wrap


def test_unwrap_gives_plain_values_and_secret_names():
    props = {
        "a": PropertyValue("x"),
        "b": PropertyValue("s", is_secret=True),
        "c": PropertyValue({"inner": PropertyValue("t", is_secret=True)}),
        "d": PropertyValue([PropertyValue(1.0), PropertyValue(None)]),
        "e": PropertyValue.computed(),
    }
    plain = unwrap(props)
    assert plain.values == {"a": "x", "b": "s", "c": {"inner": "t"}, "d": [1.0, None], "e": UNKNOWN}
    assert plain.secrets == {"b", "c"}
    assert plain.unknown() == {"e"}
    # One UNKNOWN: the kinds' check recognises what the provider's unwrap produces.
    assert UNKNOWN is kinds.UNKNOWN and kinds.has_unknown(plain.values["e"])


def test_wrap_marks_named_properties_secret_and_round_trips():
    wrapped = wrap({"a": "x", "n": 3, "m": {"k": [True]}}, secrets={"a"})
    assert wrapped["a"].is_secret and not wrapped["n"].is_secret
    assert wrapped["n"].value == 3.0
    back = unwrap(wrapped)
    assert back.values == {"a": "x", "n": 3.0, "m": {"k": [True]}}
    assert back.secrets == {"a"}


def test_the_wire_protocol_unknown_string_is_unknown():
    from pulumi.provider.experimental.property_value import PropertyValue
    from pulumi.runtime.rpc import UNKNOWN as WIRE_UNKNOWN

    from unkai.provider import UNKNOWN
    from unkai.provider._values import to_plain

    assert to_plain(PropertyValue(WIRE_UNKNOWN)) is UNKNOWN
    assert to_plain(PropertyValue("a string")) == "a string"
