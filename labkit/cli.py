"""The ``labkit`` command: doctor | prepare | bundle | registry | clean (thin wrappers, as text)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence

import pandas as pd

from labkit.course import doctor_checks, render_checks, terminal_environment
from labkit.engine import RAW_ERRORS, EngineIncompatible, EngineUnavailable, LabkitError, translate


def _frame(df: pd.DataFrame) -> str:
    return "(nothing)" if df.empty else df.to_string(index=False)


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = doctor_checks()
    print(render_checks(checks))
    failing = [c for c in checks if not c.ok]
    if failing:
        print(f"\n{len(failing)} problem(s): {failing[0].fix}")
        return 1
    pending = [c.name for c in checks if c.pending]
    print("\nEverything the course needs is ready"
          + (f"; not started yet: {', '.join(pending)}." if pending else "."))
    return 0


class ByteProgress:
    """Progress of a long copy as a line every 10 %, for a terminal or a log."""

    def __init__(self, label: str) -> None:
        self.label, self.shown = label, -1

    def restart(self, label: str) -> None:
        """Count a new stage from 0 %."""
        self.label, self.shown = label, -1

    def __call__(self, done: int, total: int) -> None:
        tenth = 10 * done // total if total else 10
        if tenth != self.shown:
            self.shown = tenth
            print(f"  {self.label}: {done / 1e6:,.0f} / {total / 1e6:,.0f} MB "
                  f"({min(tenth, 10) * 10} %)", flush=True)


def cmd_prepare(args: argparse.Namespace) -> int:
    from labkit.offline import prepare

    if args.from_bundle:
        from labkit.offline import load_bundle

        def stage(text: str) -> None:
            print(f"{args.from_bundle}: {text}", flush=True)
            progress.restart(text.split()[0])

        progress = ByteProgress("")
        done = load_bundle(args.from_bundle, on_progress=progress, on_stage=stage)
        print(f"loaded {', '.join(done.images)} ({done.size / 1e6:,.0f} MB, sha256 "
              f"{done.sha256[:12]}…)\n$ {done.command}")
    result = prepare(offline=True if args.offline else None,
                     trust_host_ca=True if args.trust_host_ca else None,
                     images=args.image or None)
    print(_frame(result.drop(columns=["command"])))
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from labkit.offline import checksum_path, export_bundle

    done = export_bundle(args.file, on_progress=ByteProgress("saving"))
    print(f"wrote {done.path} ({done.size / 1e6:,.0f} MB) and {checksum_path(done.path).name}: "
          f"{', '.join(done.images)}\n$ {done.command}\n"
          f"On each machine: `labkit prepare --from {done.path.name}` (it checks the "
          "checksum first).")
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from labkit.registry import registry_status, start_registry, stop_registry

    if args.action == "start":
        reg = start_registry()
        print(f"registry {reg.name} at {reg.address} (user {reg.username})")
        if reg.command:
            print(f"$ {reg.command}")
    elif args.action == "password":
        return _write_password(curl=args.curl)
    elif args.action == "ca":
        return _write_ca()
    elif args.action == "stop":
        stopped = stop_registry(remove=args.remove)
        print("stopped" if stopped else "not running")
    else:
        for key, value in registry_status().items():
            print(f"{key}: {value}")
    return 0


def _write_password(curl: bool = False) -> int:
    """The registry password, for a pipe into ``docker login --password-stdin`` only (with
    ``--curl``: curl's ``user`` option, for a pipe into ``curl -K-``)."""
    from labkit.registry import credentials, curl_user_option, current_registry

    if sys.stdout.isatty():
        print("labkit: the password goes into a pipe, never onto a screen: "
              "labkit registry password | docker login ADDRESS -u USER --password-stdin",
              file=sys.stderr)
        return 2
    user, password = credentials(current_registry())
    sys.stdout.write(curl_user_option(user, password) if curl else password + "\n")
    return 0


def _write_ca() -> int:
    """The file of the local registry's CA certificate (public), for ``curl --cacert``."""
    from labkit.registry import current_registry

    reg = current_registry()
    if not reg.ca_file:
        print(f"labkit: {reg.address} is not the course's local registry: it has no CA of "
              "labkit's", file=sys.stderr)
        return 2
    print(reg.ca_file)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """``eval "$(labkit env)"``: a terminal gets what the notebooks' terminal cells have."""
    for key, value in terminal_environment().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from labkit.cleanup import clean, preview_system_prune

    if args.preview:
        print("A plain `docker system prune` would remove (nothing removed):")
        print(_frame(preview_system_prune()))
        return 0
    report = clean(include_base=args.include_base, show=False,
                   build_cache_prune=True if args.build_cache else None)
    print(_frame(report.items))
    print(f"reclaimed {report.reclaimed_bytes / 1e6:.1f} MB")
    if report.build_cache:
        print(report.build_cache)
    for command in report.commands:
        print(f"$ {command}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per task."""
    top = argparse.ArgumentParser(prog="labkit", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check the engine, course images and registry")
    p = sub.add_parser("prepare", help="make every course image present (pull or stand-in)")
    p.add_argument("--offline", action="store_true",
                   help="never pull: build stand-ins from Debian packages (LABKIT_OFFLINE=1)")
    p.add_argument("--trust-host-ca", action="store_true",
                   help="stand-ins trust the host's CA bundle (TLS-inspecting proxies)")
    p.add_argument("--image", action="append", metavar="NAME",
                   help="only this course image (repeatable)")
    p.add_argument("--from", dest="from_bundle", metavar="FILE",
                   help="first load the images from a bundle (`labkit bundle export`)")
    b = sub.add_parser("bundle", help="every course image in one file, for offline classrooms")
    b.add_argument("action", choices=["export"])
    b.add_argument("file", help="the bundle to write (FILE.sha256 is written beside it)")
    r = sub.add_parser("registry", help="the local registry container")
    r.add_argument("action", choices=["start", "stop", "status", "password", "ca"],
                   help="password: write the password to a pipe (for docker login); "
                   "ca: print the file of the registry's CA certificate (for curl --cacert)")
    r.add_argument("--curl", action="store_true",
                   help="with password: write curl's user option instead (for curl -K-)")
    r.add_argument("--remove", action="store_true", help="with stop: remove the container")
    sub.add_parser("env", help='what a terminal needs to type the notebooks\' commands: '
                   'eval "$(labkit env)" sets $LABKIT_USER, $REGISTRY and PATH')
    c = sub.add_parser("clean", help="remove what is yours: the course's containers, "
                       "volumes and networks, your images and the containers that run them")
    c.add_argument("--include-base", action="store_true", help="also the prepared images")
    c.add_argument("--build-cache", action="store_true",
                   help="also prune the build cache (it names no owner: every build's "
                   "cache on the engine goes, not only the course's)")
    c.add_argument("--preview", action="store_true",
                   help="only show what `docker system prune` would remove")
    return top


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "doctor": cmd_doctor, "prepare": cmd_prepare, "registry": cmd_registry, "clean": cmd_clean,
    "bundle": cmd_bundle, "env": cmd_env,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labkit`` console script; returns the exit status.

    Every labkit error, and every raw docker-py or connection error (translated by
    :func:`labkit.engine.error_translation.translate`), is printed as its message and fix, without a
    traceback. Anything else, a missing dependency (ImportError) included, is a bug or a
    broken install and keeps its traceback.
    """
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (EngineUnavailable, EngineIncompatible) as exc:
        print(f"{exc.message} {exc.hint or ''}".strip(), file=sys.stderr)
        return 1
    except LabkitError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except RAW_ERRORS as exc:  # the engine refused or went away: say so, no traceback
        print(str(translate(exc, f"run `labkit {args.command}`")), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
