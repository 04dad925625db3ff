"""The ``kleinstadtbot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.launch import resume_collector
from config.settings import ConfigError, Settings, load_settings
from storage.database import BackupFailed, DatabaseUnusable

# Exit statuses, for supervisors and scripts (README: "Running in production").
EXIT_FAILED = 1  # the action was refused or failed (an import file, a backup target)
EXIT_CONFIG = 2  # invalid settings, or bad command-line usage (argparse)
EXIT_LOGIN = 3  # the homeserver refused the bot's credentials
EXIT_DATABASE = 4  # the database file cannot be used (damaged, not a database, locked, missing)


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    return load_settings(getattr(args, "config", None), **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from bot.logs import setup_logging

    settings = _settings(args)
    problems = settings.problems_for_run()
    if problems:
        raise ConfigError(problems)
    setup_logging(settings.log_level, settings.log.format)
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
        return EXIT_CONFIG
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


def cmd_db_check(args: argparse.Namespace) -> int:
    from storage.backups import check_database

    path = Path(args.file) if args.file else _settings(args).database
    check = check_database(path)
    print(check.summary(), file=sys.stdout if check.ok else sys.stderr)
    return 0 if check.ok else EXIT_DATABASE


def cmd_db_restore(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from storage.backups import restore_backup

    settings = _settings(args)
    restored = restore_backup(
        Path(args.file),
        settings.database,
        settings.crypto_dir,
        with_crypto=not args.database_only,
        now=datetime.now(UTC),
    )
    print(f"restored {restored.database} (schema version {restored.version}) from {args.file}")
    if restored.crypto:
        print(f"restored the crypto store in {settings.crypto_dir}")
    for kept in restored.kept:
        print(f"kept what was there as {kept}")
    print("start the bot again; it continues from the restored state")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot.doctor import run_doctor

    token = None
    if args.admin_token_file:
        try:
            token = Path(args.admin_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"doctor: cannot read {args.admin_token_file}: {exc.strerror}", file=sys.stderr)
            return EXIT_CONFIG
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = asyncio.run(run_doctor(getattr(args, "config", None), token))
    print(report.json() if args.json else report.text())
    return EXIT_FAILED if report.failed else 0


def cmd_audit(args: argparse.Namespace) -> int:
    import json

    from storage.audit import AuditRepository
    from storage.database import Database

    settings = _settings(args)
    if not settings.database.is_file():
        raise DatabaseUnusable(f"database {settings.database} does not exist; check `database` in the config")

    async def read() -> list:
        db = await Database(settings.database).open(migrate=False)
        try:
            if await db.fetchone("SELECT 1 FROM sqlite_master WHERE name = 'audit_log'") is None:
                return []  # a database from before the audit trail
            return await AuditRepository(db).recent(args.limit)
        finally:
            await db.close()

    entries = asyncio.run(read())
    for entry in reversed(entries):  # oldest first, as a log reads
        if args.json:
            print(json.dumps(entry.as_json(), ensure_ascii=False))
            continue
        detail = " ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()))
        result = f" ({', '.join(entry.result)})" if entry.result else ""
        when = entry.at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S %z")
        print(
            f"{when}  {entry.actor}  {entry.action}{' ' + detail if detail else ''}  {entry.outcome}{result}"
        )
    if not entries and not args.json:
        print("no audit entries yet", file=sys.stderr)
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
    """The command line. ``kleinstadtbot --help`` lists every command with its actions (the
    overview is built from the same calls that declare them, so it cannot miss one)."""
    parser = argparse.ArgumentParser(
        prog="kleinstadtbot",
        usage="%(prog)s [-h] COMMAND ...",
        description="Matrix bot of the Kleinstadtakademie.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", "-c", metavar="PATH", help="YAML config file (default: $KLEINSTADTBOT_CONFIG)"
    )
    # argparse would list only the first word of each command; the overview below lists all
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS)
    overview: list[tuple[str, str]] = []

    def leaf(
        subparsers: Any,
        words: str,
        help: str,
        func: Callable[[argparse.Namespace], int],
        positionals: tuple[str, ...] = (),
        with_config: bool = True,
    ) -> argparse.ArgumentParser:
        """A command that does something: ``words`` as typed after ``kleinstadtbot``."""
        command = subparsers.add_parser(
            words.split()[-1], parents=[common] if with_config else [], help=help, description=help
        )
        for name in positionals:
            command.add_argument(name.lower(), metavar=name)
        command.set_defaults(func=func)
        overview.append((" ".join([words, *positionals]), help))
        return command

    def group(name: str, help: str, dest: str) -> Any:
        """A word that only groups actions (``config``, ``db``, …)."""
        grouping = sub.add_parser(name, help=help, description=help)
        return grouping.add_subparsers(dest=dest, required=True, metavar="ACTION")

    leaf(sub, "run", "run the bot against its homeserver", cmd_run)
    p = leaf(sub, "console", "chat with the bot in the terminal (no homeserver needed)", cmd_console)
    p.add_argument(
        "--as",
        dest="as_user",
        metavar="@user:server",
        help="the Matrix ID you write as (default: first coordinator, else a guest)",
    )
    p = leaf(sub, "demo", "start a local Synapse with demo users and the bot", cmd_demo, with_config=False)
    p.add_argument(
        "--data",
        default="demo-data",
        metavar="DIR",
        help="folder for the homeserver and bot data (default: demo-data)",
    )
    p.add_argument("--port", type=int, default=8008, help="homeserver port on 127.0.0.1")

    actions = group("config", "configuration tools", "config_command")
    leaf(actions, "config check", "validate the config without connecting", cmd_config_check)

    actions = group("content", "FAQ and module content tools", "content_command")
    p = leaf(
        actions,
        "content check",
        "validate the FAQ and modules; prints file:line: problem",
        cmd_content_check,
    )
    p.add_argument("--dir", metavar="DIR", help="content folder (default: content_dir setting or shipped)")

    actions = group("db", "database tools", "db_command")
    leaf(
        actions,
        "db backup",
        "consistent copy of the database, safe while the bot runs",
        cmd_db_backup,
        positionals=("PATH",),
    )
    p = leaf(
        actions,
        "db restore",
        "put a backup in place of the database and crypto store (the bot stopped)",
        cmd_db_restore,
        positionals=("FILE",),
    )
    p.add_argument(
        "--database-only", action="store_true", help="leave the crypto store as it is (default: restore both)"
    )
    p = leaf(actions, "db check", "integrity, foreign keys and schema version of the database", cmd_db_check)
    p.add_argument(
        "file", nargs="?", metavar="FILE", help="a database or backup file (default: the database)"
    )

    p = leaf(sub, "doctor", "check the installation against its homeserver (one line per check)", cmd_doctor)
    p.add_argument("--json", action="store_true", help="the checks as JSON")
    p.add_argument(
        "--admin-token-file",
        metavar="FILE",
        help="a Synapse admin's access token, to check the bot's rate-limit exemption",
    )
    p = leaf(sub, "audit", "print the audit trail: who did what as a coordinator", cmd_audit)
    p.add_argument("--limit", type=int, default=50, metavar="N", help="the newest N entries (default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    actions = group("data", "reference data: municipality register, central places", "data_command")
    p = leaf(
        actions,
        "data import-municipalities",
        "replace the register with a Destatis GV100AD file (raw or CSV)",
        cmd_data_import,
        positionals=("FILE",),
    )
    p.add_argument(
        "--population-date",
        metavar="YYYY-MM-DD",
        help="population reference date (needed for the raw GV100AD file)",
    )
    p = leaf(
        actions,
        "data import-central-places",
        "record central-place functions from a CSV with ags,function",
        cmd_data_import,
        positionals=("FILE",),
    )
    p.add_argument("--reason", help="reason shown with each record (default: the file name)")

    width = max(len(words) for words, _ in overview) + 2
    parser.epilog = "\n".join(
        [
            "commands (kleinstadtbot COMMAND --help shows a command's options):",
            *(f"  {words.ljust(width)}{help}" for words, help in overview),
        ]
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is not cmd_run:
        resume_collector("not a run")  # bot.launch paused it for a bot's start only
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        for line in exc.problems:
            print(f"config error: {line}", file=sys.stderr)
        return EXIT_CONFIG
    except DatabaseUnusable as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except BackupFailed as exc:
        print(f"backup error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
