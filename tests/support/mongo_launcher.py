"""Runs the mongoeco MongoDB-protocol server for cachex's tests, patched for the Rust driver.

Usage: python mongo_launcher.py --port PORT   (0 picks a free port; binds 127.0.0.1 only)
Prints one line, "READY <mongodb uri>", once the server listens; stops on SIGTERM/SIGINT.

Three incompatibilities between mongoeco 4.11 and the official Rust driver (mongodb 3.x) are
patched before the server starts:
1. cursor ids must be BSON Int64 (mongoeco sends Python ints, encoded as Int32);
2. Int64 arguments (limit, skip, batchSize, getMore, killCursors ids, $skip/$limit stages) arrive
   as mongoeco's BsonInt64 wrapper, which its validators reject: unwrap them;
3. error replies need a numeric `code` (mongoeco sends only {ok: 0, errmsg}).
"""

import argparse
import asyncio
import signal
import sys

from bson.int64 import Int64

import mongoeco.wire.executor as executor_module
from mongoeco.core.bson_scalars import BsonInt64
from mongoeco.wire.executor import WireCommandExecutor
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer


def patch_cursor_ids() -> None:
    original = WireCommandExecutor.execute_prepared

    async def execute_prepared(self, context):
        reply = await original(self, context)
        cursor = reply.get("cursor") if isinstance(reply, dict) else None
        if isinstance(cursor, dict):
            cursor_id = cursor.get("id")
            if isinstance(cursor_id, int) and not isinstance(cursor_id, (bool, Int64)):
                cursor["id"] = Int64(cursor_id)
        return reply

    WireCommandExecutor.execute_prepared = execute_prepared


def unwrap(value):
    return value.value if isinstance(value, BsonInt64) else value


def patch_int64_arguments() -> None:
    original = executor_module.build_request_context

    def build_request_context(body, *args, **kwargs):
        if isinstance(body, dict):
            for key in ("limit", "skip", "batchSize", "getMore"):
                if key in body:
                    body[key] = unwrap(body[key])
            if isinstance(body.get("cursors"), list):
                body["cursors"] = [unwrap(cursor) for cursor in body["cursors"]]
            if isinstance(body.get("pipeline"), list):
                for stage in body["pipeline"]:
                    if isinstance(stage, dict):
                        for key in ("$skip", "$limit"):
                            if key in stage:
                                stage[key] = unwrap(stage[key])
        return original(body, *args, **kwargs)

    executor_module.build_request_context = build_request_context


def patch_error_codes() -> None:
    original = WireCommandExecutor.error_document

    def error_document(exc):
        document = original(exc)
        if isinstance(document, dict) and "code" not in document:
            document["code"] = 8
            document.setdefault("codeName", "UnknownError")
        return document

    WireCommandExecutor.error_document = staticmethod(error_document)


async def serve(port: int) -> None:
    server = AsyncMongoEcoProxyServer(host="127.0.0.1", port=port)
    address = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {address.uri}", flush=True)
    await stop.wait()
    await server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    patch_cursor_ids()
    patch_int64_arguments()
    patch_error_codes()
    asyncio.run(serve(port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
