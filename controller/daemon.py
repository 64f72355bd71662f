"""`mp-controller`: the controller daemon that keeps the switches' state."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from clikit import run_until_signalled, setup_logging
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
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="controller config (TOML)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser


async def run(config: config_mod.ControllerConfig, stop: asyncio.Event) -> None:
    store = IntentStore(config.state, config.fastpath.proxy_ports)
    service = ControllerService(config, store)
    server = await serve(service, config.northbound)
    log.info("northbound API on %s; switches: %s", config.northbound,
             ", ".join(f"{s.name}@{s.address}" for s in config.switches))
    tasks = [asyncio.create_task(agent.run()) for agent in service.agents]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(grace=1)
        store.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(getattr(logging, args.log_level.upper()))
    try:
        config = config_mod.load(Path(args.config))
    except config_mod.ConfigError as exc:
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
