"""The command line: render, validate, check, explain, diff, list (plus plan and triage)."""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from pathlib import Path
from typing import Any

import yaml

from deploygen.errors import UserError
from deploygen.load import ResolvedProfile, available_profiles, load_profile
from deploygen.load.yaml_source import display_path
from deploygen.plan.deployment import ROOT
from deploygen.render import render_deployments, write_atomic
from deploygen.render.literals import py_literal
from deploygen.validate import check_profile

GENERATED_DIR = ROOT / "generated"


def output_path(profile: ResolvedProfile) -> Path:
    return GENERATED_DIR / profile.name / "deploy.py"


def deployable_profiles() -> list[ResolvedProfile]:
    profiles = [load_profile(name) for name in available_profiles()]
    return [p for p in profiles if not p.abstract]


def _load_deployable(name: str) -> ResolvedProfile:
    profile = load_profile(name)
    if profile.abstract:
        children = [p.name for p in deployable_profiles() if profile.path in p.sources]
        raise UserError(f"{display_path(profile.path)} is an abstract base; render one of: {', '.join(children)}")
    return profile


def _render_all(profiles: list[ResolvedProfile], strict: bool, quiet: bool = False) -> list[str]:
    """Validate every profile first, then render them together; any error renders nothing."""
    deployments = []
    for profile in profiles:
        checked = check_profile(profile, strict=strict)
        # Rendering shows warnings; info notes are for `validate`.
        for warning in checked.warnings:
            if warning.severity == "warning" and not quiet:
                print(warning, file=sys.stderr)
        deployments.append(checked.deployment)
    return render_deployments(deployments)


def _render(profile: ResolvedProfile, strict: bool, quiet: bool = False) -> str:
    return _render_all([profile], strict, quiet)[0]


def cmd_render(args: argparse.Namespace) -> int:
    profiles = deployable_profiles() if args.all else [_load_deployable(args.profile)]
    # Render everything first: a bad profile writes nothing, not half of the set.
    for profile, source in zip(profiles, _render_all(profiles, args.strict), strict=True):
        path = output_path(profile)
        changed = write_atomic(path, source)
        print(f"{display_path(path)}: {'written' if changed else 'unchanged'}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    names = [p.name for p in deployable_profiles()] if args.all else [args.profile]
    failed = 0
    for name in names:
        profile = _load_deployable(name)
        try:
            checked = check_profile(profile, strict=args.strict)
        except UserError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        for warning in checked.warnings:
            print(warning, file=sys.stderr)
        notes = f" ({len(checked.warnings)} notes)" if checked.warnings else ""
        print(f"{display_path(profile.path)}: valid{notes}")
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    profiles = deployable_profiles()
    expected = {output_path(p) for p in profiles}
    stale = [
        display_path(output_path(profile))
        for profile, source in zip(profiles, _render_all(profiles, strict=False, quiet=True), strict=True)
        if not output_path(profile).is_file() or output_path(profile).read_text() != source
    ]
    orphans = [display_path(p) for p in GENERATED_DIR.glob("*/deploy.py") if p not in expected]
    if not stale and not orphans:
        print(f"{len(expected)} generated files are fresh")
        return 0
    for path in stale:
        print(f"{path}: stale or edited by hand", file=sys.stderr)
    for path in orphans:
        print(f"{path}: no profile renders it; delete it", file=sys.stderr)
    print("fix: make render-all", file=sys.stderr)
    return 1


def _flatten(data: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(data, dict) and data:
        out: dict[tuple, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, (*path, key)))
        return out
    return {path: data}


def cmd_explain(args: argparse.Namespace) -> int:
    profile = _load_deployable(args.profile)
    check_profile(profile)
    if args.field:
        value = profile.get(*args.field.split("."))
        if value is None:
            raise UserError(f"{args.profile} has no field {args.field!r}")
        print(value if isinstance(value, str) else _show(value))
        return 0
    print(f"# {profile.name}: {' -> '.join(display_path(p) for p in profile.sources)}")
    flat = _flatten(profile.data)
    width = max(len(".".join(map(str, p)) + ": " + _show(v)) for p, v in flat.items())
    for path, value in flat.items():
        line = ".".join(map(str, path)) + ": " + _show(value)
        print(f"{line:<{width}}  # {profile.origin(path)}")
    return 0


def _show(value: Any) -> str:
    """A value as YAML would read it back: strings that look like numbers or booleans stay quoted."""
    if isinstance(value, str):
        return yaml.safe_dump(value, width=10**9, allow_unicode=False).removesuffix("\n...\n").strip()
    return py_literal(value)


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = _load_deployable(args.a), _load_deployable(args.b)
    source_a, source_b = _render(a, False), _render(b, False)
    diff = difflib.unified_diff(
        source_a.splitlines(keepends=True),
        source_b.splitlines(keepends=True),
        fromfile=display_path(output_path(a)),
        tofile=display_path(output_path(b)),
    )
    sys.stdout.writelines(diff)
    flat_a, flat_b = _flatten(a.data), _flatten(b.data)
    print(f"\nResolved values that differ ({a.name} -> {b.name}):")
    for path in sorted(set(flat_a) | set(flat_b), key=lambda p: tuple(map(str, p))):
        va, vb = flat_a.get(path, "<unset>"), flat_b.get(path, "<unset>")
        if va != vb:
            where = a.origin(path) if path in flat_a else None, b.origin(path) if path in flat_b else None
            print(f"  {'.'.join(map(str, path))}: {_show(va)} -> {_show(vb)}  ({where[0] or '-'} -> {where[1] or '-'})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for name in available_profiles():
        profile = load_profile(name)
        kind = "base" if profile.abstract else f"{profile.get('gpu', 'count')}x {profile.get('gpu', 'type')}"
        print(f"{name:<28} {kind:<10} {profile.get('description', default='')}")
    return 0


def cmd_triage(args: argparse.Namespace) -> int:
    from deploygen.operate.triage import run

    return run(args.log, out=sys.stdout, color=args.color, show_all=args.show_all)


# Commands whose modules import heavy libraries (openai, matplotlib): loaded only when asked for, so
# `render` and `check` start fast.
LAZY_COMMANDS = {
    "plan": ("deploygen.plan.capacity", "add_plan_parser"),
    "smoke": ("deploygen.operate.smoke", "add_parser"),
    "bench": ("deploygen.operate.loadtest", "add_parser"),
}


def _lazy_commands_for(argv: list[str] | None) -> list[str]:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in LAZY_COMMANDS:
        return [first]
    return list(LAZY_COMMANDS) if first is None else []


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="generate.py", description="SGLang-on-Modal deployment generator")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, summary, func in (
        ("render", "validate and render generated/<profile>/deploy.py", cmd_render),
        ("validate", "validate without writing anything", cmd_validate),
    ):
        command = sub.add_parser(name, help=summary)
        target = command.add_mutually_exclusive_group(required=True)
        target.add_argument("profile", nargs="?", help="profile name or path")
        target.add_argument("--all", action="store_true", help="every profile in profiles/")
        command.add_argument("--strict", action="store_true", help="treat warnings as errors")
        command.set_defaults(func=func)

    sub.add_parser("check", help="fail when a committed render is stale or edited").set_defaults(func=cmd_check)

    explain = sub.add_parser("explain", help="the resolved profile with the file:line of every value")
    explain.add_argument("profile")
    explain.add_argument("--field", help="print only this dotted field, e.g. app.name")
    explain.set_defaults(func=cmd_explain)

    diff = sub.add_parser("diff", help="diff two profiles' renders and resolved values")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.set_defaults(func=cmd_diff)

    sub.add_parser("list", help="the profiles").set_defaults(func=cmd_list)

    for name in _lazy_commands_for(argv):
        module, function = LAZY_COMMANDS[name]
        getattr(importlib.import_module(module), function)(sub)

    triage = sub.add_parser("triage", help="classify log lines; exit 1 on a fatal pattern")
    triage.add_argument("log", nargs="?", default="-", help="log file, or - for standard input (default)")
    triage.add_argument("--all", dest="show_all", action="store_true", help="also print unmatched lines")
    triage.add_argument("--color", action="store_true", help="color the severity tags")
    triage.set_defaults(func=cmd_triage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
