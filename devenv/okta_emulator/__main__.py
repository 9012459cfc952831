"""Run the Okta emulator as its own process.

    python -m devenv.okta_emulator --port 8444 [--state-dir DIR] [--ca-from DIR] [--seed seed.json]

Prints one JSON line (url, ca_bundle, state_dir, seeded orgs with issuers and ids) and serves
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .server import OktaEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.okta_emulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8444, help="port (default 8444; 0 picks one)")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="keeps the CA and server certificate (default: a temp dir)"
    )
    parser.add_argument("--ca-from", type=Path, default=None, help="reuse the CA of another emulator's state directory")
    parser.add_argument(
        "--hostname", default="localhost", help="host name in URLs and the certificate (default localhost)"
    )
    parser.add_argument("--seed", type=Path, default=None, help="seed JSON (see README); idempotent")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        emulator = OktaEmulator(args.host, args.port, args.state_dir, hostname=args.hostname, ca_from=args.ca_from)
    except OSError as exc:
        print(f"error: cannot prepare the state directory: {exc}", file=sys.stderr)
        return 2
    try:
        emulator.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    try:
        seeded = emulator.load_seed(args.seed) if args.seed else {"orgs": []}
    except (OSError, ValueError, KeyError, LookupError) as exc:
        emulator.stop()
        print(f"error: cannot apply seed {args.seed}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(
        json.dumps(
            {
                "url": emulator.url,
                "ca_bundle": str(emulator.ca_bundle),
                "state_dir": str(emulator.state_dir),
                "orgs": seeded["orgs"],
            }
        ),
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
