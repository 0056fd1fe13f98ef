"""The provider's gRPC server: what the engine receives when a handler fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.runtime import proto
from pulumi.runtime.proto import provider_pb2_grpc

from unkai.provider import UnkaiProvider, wrap
from unkai.provider._server import make_server
from unkai.provider.resources import LocalFile

URN = "urn:pulumi:dev::proj::unkai:local:File::greeting"


async def _call(method: str, request: object) -> grpc.aio.AioRpcError:
    server = make_server(UnkaiProvider([LocalFile()]), engine="127.0.0.1:1", args=[])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            try:
                await getattr(stub, method)(request)
            except grpc.aio.AioRpcError as err:
                return err
            raise AssertionError(f"{method} succeeded")
    finally:
        await server.stop(None)


def test_a_failing_handler_reaches_the_engine_as_its_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "greeting.txt"
    props = wrap({"path": str(target), "content": "hi", "mode": "0600"})
    request = proto.CreateRequest(urn=URN, properties=PropertyValue.marshal_map(props))
    err = asyncio.run(_call("Create", request))
    assert err.code() == grpc.StatusCode.UNKNOWN
    assert err.details() == f"greeting: cannot write {target}: File exists"


def test_an_unknown_type_is_named_without_a_class_name() -> None:
    urn = "urn:pulumi:dev::proj::unkai:local:Nope::x"
    request = proto.CheckRequest(urn=urn, type="unkai:local:Nope")
    err = asyncio.run(_call("Check", request))
    assert err.details() == (
        "unknown resource type unkai:local:Nope; this provider has: unkai:local:File"
    )


def test_an_unexpected_error_is_a_sentence_without_its_class_name(monkeypatch) -> None:
    def broken(self, inputs):
        raise OSError(39, "Directory not empty", "/cache/.tmp")

    monkeypatch.setattr(LocalFile, "create", broken)
    props = wrap({"path": "/tmp/unkai-never-written", "content": "hi", "mode": "0600"})
    request = proto.CreateRequest(urn=URN, properties=PropertyValue.marshal_map(props))
    err = asyncio.run(_call("Create", request))
    assert err.code() == grpc.StatusCode.UNKNOWN
    assert "<class" not in err.details() and "OSError" not in err.details()
    assert err.details().startswith(
        "unkai's provider failed unexpectedly ([Errno 39] Directory not empty: '/cache/.tmp');"
        " this is a bug in unkai"
    )


def test_a_method_the_provider_does_not_serve_stays_unimplemented() -> None:
    # The engine's handshake falls back on UNIMPLEMENTED; any other status kills the plugin.
    err = asyncio.run(_call("Handshake", proto.ProviderHandshakeRequest()))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
