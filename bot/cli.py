"""The ``kleinstadtbot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from config.settings import ConfigError, Settings, load_settings


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    return load_settings(getattr(args, "config", None), **overrides)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # nio logs every HTTP retry and unknown event at INFO/WARNING; keep the operator's log readable
    logging.getLogger("nio").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("peewee").setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    problems = settings.problems_for_run()
    if problems:
        raise ConfigError(problems)
    _setup_logging(settings.log_level)
    from bot.runtime import run_bot

    return asyncio.run(run_bot(settings))


def cmd_console(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from bot.console import run_console

    return asyncio.run(run_console(settings, as_user=args.as_user))


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(Path(args.data), port=args.port)


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    problems = settings.problems_for_run()
    for line in problems:
        print(f"config error: {line}", file=sys.stderr)
    if problems:
        return 2
    print(
        f"config OK: {settings.user_id} on {settings.homeserver}, database {settings.database}, "
        f"locale {settings.locale}, {len(settings.coordinators)} coordinator(s)"
    )
    return 0


def cmd_content_check(args: argparse.Namespace) -> int:
    from commands.faq_search import content_root, load_library

    root = Path(args.dir) if args.dir else content_root(_settings(args))
    library = load_library(root)
    for problem in library.problems:
        print(problem, file=sys.stderr)
    faq = sum(len(entries) for entries in library.content.faq.values())
    modules = sum(len(found) for found in library.content.modules.values())
    if library.problems:
        print(f"content: {len(library.problems)} problem(s) in {root}", file=sys.stderr)
        return 1
    print(f"content OK: {faq} FAQ entries, {modules} modules in {root}")
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    from storage.database import backup_file

    settings = _settings(args)
    target = backup_file(Path(settings.database), Path(args.path))
    print(f"backup written to {target}")
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    """``data import-municipalities`` / ``data import-central-places``: all or nothing."""
    from storage.municipalities import run_cli_import

    return run_cli_import(
        _settings(args).database,
        args.data_command,
        args.file,
        population_date=getattr(args, "population_date", None),
        reason=getattr(args, "reason", None),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kleinstadtbot",
        description="Matrix bot of the Kleinstadtakademie.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", "-c", metavar="PATH", help="YAML config file (default: $KLEINSTADTBOT_CONFIG)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run the bot against its homeserver")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "console", parents=[common], help="chat with the bot in the terminal (no homeserver needed)"
    )
    p.add_argument(
        "--as",
        dest="as_user",
        metavar="@user:server",
        help="the Matrix ID you write as (default: first coordinator, else a guest)",
    )
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("demo", help="start a local Synapse with demo users and the bot")
    p.add_argument(
        "--data",
        default="demo-data",
        metavar="DIR",
        help="folder for the homeserver and bot data (default: demo-data)",
    )
    p.add_argument("--port", type=int, default=8008, help="homeserver port on 127.0.0.1")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("config", help="configuration tools")
    config_sub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = config_sub.add_parser("check", parents=[common], help="validate the config without connecting")
    c.set_defaults(func=cmd_config_check)

    p = sub.add_parser("content", help="FAQ and module content tools")
    content_sub = p.add_subparsers(dest="content_command", required=True, metavar="ACTION")
    c = content_sub.add_parser(
        "check", parents=[common], help="validate the FAQ and modules; prints file:line: problem"
    )
    c.add_argument("--dir", metavar="DIR", help="content folder (default: content_dir setting or shipped)")
    c.set_defaults(func=cmd_content_check)

    p = sub.add_parser("db", help="database tools")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    c = db_sub.add_parser(
        "backup", parents=[common], help="consistent copy of the database, safe while the bot runs"
    )
    c.add_argument("path", metavar="PATH")
    c.set_defaults(func=cmd_db_backup)

    p = sub.add_parser("data", help="reference data: municipality register, central places")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = data_sub.add_parser(
        "import-municipalities",
        parents=[common],
        help="replace the register with a Destatis GV100AD file (raw or CSV)",
    )
    c.add_argument("file", metavar="FILE")
    c.add_argument(
        "--population-date",
        metavar="YYYY-MM-DD",
        help="population reference date (needed for the raw GV100AD file)",
    )
    c.set_defaults(func=cmd_data_import)
    c = data_sub.add_parser(
        "import-central-places",
        parents=[common],
        help="record central-place functions from a CSV with ags,function",
    )
    c.add_argument("file", metavar="FILE")
    c.add_argument("--reason", help="reason shown with each record (default: the file name)")
    c.set_defaults(func=cmd_data_import)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        for line in exc.problems:
            print(f"config error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
