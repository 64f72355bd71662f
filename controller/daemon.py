"""`mp-controller`: the controller daemon that keeps the switches' state."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from pathlib import Path

from clikit import run_until_signalled, setup_logging
from clikit import tls as tls_mod
from controller import config as config_mod
from controller.intent import IntentStore
from controller.northbound import serve
from controller.service import ControllerService

log = logging.getLogger("mp-controller")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-controller",
        description=(
            "P4Runtime controller. Becomes primary on each configured switch, pushes the "
            "pipeline, installs the intended state kept in SQLite, re-installs it when a "
            "switch restarts, and serves the northbound API that end-host agents use to "
            "open fast-path flows and register stream priorities."
        ),
        epilog="see README.md, 'Controller', for the config format",
    )
    parser.add_argument("--config", metavar="FILE", help="controller config (TOML)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--hash-token", action="store_true",
                        help="print the token_sha256 of the token read from stdin, and exit")
    tls_mod.add_arguments(parser, server=True,
                          what="the northbound API; overrides the config's [tls]")
    return parser


def warn_plaintext(config: config_mod.ControllerConfig) -> None:
    """One WARNING line per plaintext link and for tokens kept in clear in the config."""
    if not config.tls.enabled:
        tls_mod.warn_plaintext(log, "the northbound API", config.northbound)
        if not tls_mod.is_loopback(config.northbound):
            log.warning("clients will not send their tokens in clear to %s: give the "
                        "northbound API a certificate", config.northbound)
    for switch in config.switches:
        if not switch.tls.enabled:
            tls_mod.warn_plaintext(log, f"P4Runtime to switch {switch.name}", switch.address)
    if config.clear_tokens:
        log.warning("the config gives the token of %s in clear: store token_sha256 instead "
                    "(mp-controller --hash-token)", ", ".join(config.clear_tokens))


async def run(config: config_mod.ControllerConfig, stop: asyncio.Event) -> None:
    store = IntentStore(config.state, config.fastpath.proxy_ports)
    service = ControllerService(config, store)
    server = await serve(service, config.northbound,
                         config.tls.server_credentials() if config.tls.enabled else None)
    warn_plaintext(config)
    log.info("northbound API on %s (%s); switches: %s", config.northbound,
             config.tls.describe(),
             ", ".join(f"{s.name}@{s.address} ({s.tls.describe()})" for s in config.switches))
    tasks = [asyncio.create_task(agent.run()) for agent in service.agents]
    try:
        await stop.wait()
    finally:
        service.shutting_down = True  # open sessions keep what they made
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(grace=1)
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.hash_token:
        token = sys.stdin.readline().strip()
        if not token:
            parser.error("--hash-token: give the token on stdin")
        print(config_mod.token_hash(token))
        return 0
    if not args.config:
        parser.error("--config is required")
    setup_logging(getattr(logging, args.log_level.upper()))
    try:
        config = config_mod.load(Path(args.config))
        if args.tls_cert or args.tls_key or args.tls_ca:
            config = dataclasses.replace(config, tls=tls_mod.from_args(args, server=True))
    except (config_mod.ConfigError, tls_mod.TlsError) as exc:
        print(f"mp-controller: {exc}", file=sys.stderr)
        return 2

    try:
        run_until_signalled(lambda stop: run(config, stop))
    except OSError as exc:
        print(f"mp-controller: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
