"""The gRPC server that serves unkai's provider to the engine.

It is the SDK's (``pulumi.provider.experimental.server``) with one difference: an error a
handler raises reaches the user as the sentence it is. grpc.aio answers an exception a
servicer method lets escape with the status ``Unexpected <class '…'>: …``, and the engine
prints that verbatim; the SDK passes only its own input-property errors through as
statuses. So unkai's errors (:class:`ProviderError`, and any other a handler's check lets
out) are turned into the status here, by an interceptor.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from pulumi.provider.experimental.server import ProviderServicer
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import provider_pb2_grpc

from unkai.errors import UnkaiError
from unkai.provider._provider import UnkaiProvider


class _PlainErrors(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Answers unkai's errors with their message as the status's details, as they are."""

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            try:
                return await inner(request, context)
            except UnkaiError as err:
                # abort() raises grpc.aio's AbortError, which grpc.aio lets through.
                await context.abort(grpc.StatusCode.UNKNOWN, str(err))
            except (grpc.aio.AbortError, grpc.RpcError, NotImplementedError):
                # The SDK's own statuses (input-property errors) stand, and so does
                # UNIMPLEMENTED for a method it does not serve (the engine falls back).
                raise
            except Exception as err:
                # Not one of unkai's errors, so a bug: say what failed in a sentence, and
                # leave the traceback in the plugin's log (the engine's, with -v).
                traceback.print_exc(file=sys.stderr)
                await context.abort(grpc.StatusCode.UNKNOWN, unexpected(err))

        return grpc.unary_unary_rpc_method_handler(
            unary_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def unexpected(err: BaseException) -> str:
    """The sentence for an error unkai did not expect, without its class name."""
    detail = str(err) or "no detail"
    return (
        f"unkai's provider failed unexpectedly ({detail}); this is a bug in unkai: run"
        " again, and if it repeats, report it with the output of the same command and -v"
    )


def make_server(provider: UnkaiProvider, *, engine: str, args: list[str]) -> Any:
    """A gRPC server (not started, no port yet) that serves ``provider``.

    Args:
        provider: The provider.
        engine: The engine's address, where the SDK logs and resolves references.
        args: The plugin's command line, as the SDK's servicer keeps it.

    Returns:
        A ``grpc.aio.Server``; the caller adds its port and starts it.
    """
    server = grpc.aio.server(options=_GRPC_CHANNEL_OPTIONS, interceptors=[_PlainErrors()])
    servicer = ProviderServicer(args, provider.version, provider, engine_address=engine)
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer, server)
    return server


async def run_server(provider: UnkaiProvider, *, engine: str, args: list[str]) -> None:
    """Serve ``provider`` on a free loopback port until the engine stops the plugin.

    Prints the port on standard output, which is how the engine finds the plugin.
    """
    server = make_server(provider, engine=engine, args=args)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    sys.stdout.buffer.write(f"{port}\n".encode())
    sys.stdout.buffer.flush()
    await server.wait_for_termination()
