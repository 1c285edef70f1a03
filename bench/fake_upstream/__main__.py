"""Run the fake upstream as a process: ``python -m bench.fake_upstream --port 9100``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from bench.fake_upstream.server import serve


async def _run(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await serve(host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream on http://{host}:{port} (pid {os.getpid()})", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, on uvloop when it is installed."""
    parser = argparse.ArgumentParser(description="The fake LLM upstream (every dialect).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a gateway dependency
        pass
    asyncio.run(_run(args.host, args.port))


if __name__ == "__main__":
    main()
