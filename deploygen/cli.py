"""The command line: one table of commands; each command imports what it needs when it runs.

`python generate.py COMMAND ...`; every command that reads a profile runs the one pipeline
(deploygen.pipeline: load -> validate -> plan) and works from its checked result.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploygen.errors import DeploygenError, Severity
from deploygen.operate import BENCH_TIME_LIMIT_S, SMOKE_TIMEOUT_S

# --- render, validate, check ----------------------------------------------------------------------


def _render_checked(checked: list, quiet: bool = False, out_dir: Path | None = None) -> list[str]:
    """Render checked profiles together (one ruff run); rendering shows warnings, `validate` shows notes too.
    out_dir: where the render goes when not generated/<profile>/ (local files are named relative to it)."""
    from deploygen.render import render_deployments

    if not quiet:
        for item in checked:
            for finding in item.findings:
                if finding.severity == Severity.WARNING:
                    print(finding, file=sys.stderr)
    return render_deployments([item.deployment for item in checked], out_dir)


def _each_profile(strict: bool) -> list[tuple[str, Any]]:
    """Every profile in profiles/ through the pipeline: (name, Checked or the UserError it raised), abstract
    bases left out. A profile that fails never stops or hides the others."""
    from deploygen.errors import UserError
    from deploygen.load import available_profiles, load_profile
    from deploygen.pipeline import check_profile

    results: list[tuple[str, Any]] = []
    for name in available_profiles():
        try:
            profile = load_profile(name)
            if not profile.abstract:
                results.append((name, check_profile(profile, strict=strict)))
        except UserError as exc:
            results.append((name, exc))
    return results


def _check_all(strict: bool) -> list:
    """Every deployable profile through the pipeline; any error stops them all, so nothing is half-written,
    and the errors of every failing profile are reported together."""
    from deploygen.errors import UserError

    results = _each_profile(strict)
    failed = [problem for _, result in results if isinstance(result, UserError) for problem in result.problems]
    if failed:
        raise UserError(failed)
    return [result for _, result in results]


def cmd_render(args: argparse.Namespace) -> int:
    from deploygen.errors import UserError, os_problem
    from deploygen.files import write_atomic
    from deploygen.load.yaml_source import display_path
    from deploygen.paths import PROFILES_DIR
    from deploygen.pipeline import check_deployable
    from deploygen.render import writable_output_path

    if args.all and args.out:
        raise UserError("--out takes the render of one profile; `render --all` writes generated/<profile>/deploy.py")
    checked = _check_all(args.strict) if args.all else [check_deployable(args.profile, strict=args.strict)]
    outside = [c.profile for c in checked if c.profile.path.parent != PROFILES_DIR.resolve()]
    if outside and not args.out:
        shown = display_path(outside[0].path)
        raise UserError(
            f"{shown} is not in profiles/, so its render has no place in generated/: "
            f"write `render {shown} --out DIR` (DIR/deploy.py) or `--out -` (standard output)"
        )
    # Render everything first: a bad profile writes nothing, not half of the set.
    sources = _render_checked(checked, out_dir=Path(".") if args.out == "-" else Path(args.out) if args.out else None)
    if args.out == "-":
        sys.stdout.write(sources[0])
        return 0
    # Every destination checked before anything is written: only inside generated/<name>/ (or --out).
    paths = [Path(args.out) / "deploy.py" if args.out else writable_output_path(item.profile) for item in checked]
    for path, source in zip(paths, sources, strict=True):
        try:
            changed = write_atomic(path, source)
        except OSError as exc:
            raise UserError(os_problem(exc, display_path(path), "write the render")) from None
        print(f"{display_path(path)}: {'written' if changed else 'unchanged'}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from deploygen.errors import UserError
    from deploygen.load import load_profile
    from deploygen.load.yaml_source import display_path
    from deploygen.pipeline import check_profile, loadable_profiles
    from deploygen.validate.warmup import warmup_lines

    # (name, Checked or UserError) of each profile; one that fails never hides the others.
    results: list[tuple[str, Any]] = _each_profile(args.strict) if args.all else []
    seen: set[Path] = set()
    for name in [] if args.all else args.profiles:
        try:
            profile = load_profile(name)
        except UserError as exc:
            results.append((name, exc))
            continue
        # An abstract base is validated through the profiles that extend it.
        children = (
            [p for p in loadable_profiles() if not p.abstract and profile.path in p.sources]
            if profile.abstract
            else [profile]
        )
        for child in children:
            if child.path in seen:
                continue
            seen.add(child.path)
            try:
                results.append((child.name, check_profile(child, strict=args.strict)))
            except UserError as exc:
                results.append((child.name, exc))
    failed = 0
    for _, result in results:
        if isinstance(result, UserError):
            print(result, file=sys.stderr)
            failed += 1
            continue
        for finding in result.findings:
            print(finding, file=sys.stderr)
        notes = f" ({len(result.findings)} notes)" if result.findings else ""
        print(f"{display_path(result.profile.path)}: valid{notes}")
        for line in warmup_lines(result.deployment.warmup):
            print(f"  {line}")
    if len(results) > 1 and failed:
        print(f"{failed} of {len(results)} profiles are not valid", file=sys.stderr)
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Every committed render fresh and untouched (with profile names: only theirs), and no orphan."""
    from deploygen.load.yaml_source import display_path
    from deploygen.paths import GENERATED_DIR
    from deploygen.pipeline import check_deployable
    from deploygen.render import output_path

    checked = [check_deployable(name) for name in args.profiles] if args.profiles else _check_all(strict=False)
    expected = {output_path(item.profile) for item in checked}
    stale = [
        display_path(output_path(item.profile))
        for item, source in zip(checked, _render_checked(checked, quiet=True), strict=True)
        if not output_path(item.profile).is_file() or output_path(item.profile).read_text() != source
    ]
    orphans = [] if args.profiles else [p for p in GENERATED_DIR.glob("*/deploy.py") if p not in expected]
    if not stale and not orphans:
        print(f"{len(expected)} generated {'file is' if len(expected) == 1 else 'files are'} fresh")
        return 0
    for path in stale:
        print(f"{path}: stale or edited by hand", file=sys.stderr)
    if stale:
        one = args.profiles and len(checked) == 1
        fix = f"make render PROFILE={checked[0].profile.name}" if one else "make render-all"
        print(f"fix: {fix}", file=sys.stderr)
    for path in orphans:
        print(f"{display_path(path)}: no profile renders it", file=sys.stderr)
        print(f"fix: rm -r {display_path(path.parent)}", file=sys.stderr)
    return 1


# --- explain, diff, list --------------------------------------------------------------------------


def _flatten(data: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(data, dict) and data:
        out: dict[tuple, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, (*path, key)))
        return out
    return {path: data}


def _show(value: Any) -> str:
    from deploygen.validate.explain import yaml_scalar

    return yaml_scalar(value)


def cmd_explain(args: argparse.Namespace) -> int:
    from deploygen.errors import UserError
    from deploygen.pipeline import check_deployable
    from deploygen.validate.explain import explain_lines, yaml_scalar

    profile = check_deployable(args.profile).profile
    if args.field:
        value = profile.get(*args.field.split("."), default=KeyError)
        if value is KeyError:
            raise UserError(f"{args.profile} has no field {args.field!r}")
        print(value if isinstance(value, str) else yaml_scalar(value))
        return 0
    print("\n".join(explain_lines(profile)))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    import difflib

    from deploygen.load.yaml_source import display_path
    from deploygen.pipeline import check_deployable
    from deploygen.render import output_path

    a, b = check_deployable(args.a), check_deployable(args.b)
    source_a, source_b = _render_checked([a, b])
    diff = difflib.unified_diff(
        source_a.splitlines(keepends=True),
        source_b.splitlines(keepends=True),
        fromfile=display_path(output_path(a.profile)),
        tofile=display_path(output_path(b.profile)),
    )
    sys.stdout.writelines(diff)
    flat_a, flat_b = _flatten(a.profile.data), _flatten(b.profile.data)
    print(f"\nResolved values that differ ({a.profile.name} -> {b.profile.name}):")
    for path in sorted(set(flat_a) | set(flat_b), key=lambda p: tuple(map(str, p))):
        va, vb = flat_a.get(path, "<unset>"), flat_b.get(path, "<unset>")
        if va != vb:
            where_a = a.profile.origin(path) if path in flat_a else None
            where_b = b.profile.origin(path) if path in flat_b else None
            print(f"  {'.'.join(map(str, path))}: {_show(va)} -> {_show(vb)}  ({where_a or '-'} -> {where_b or '-'})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from deploygen.errors import UserError
    from deploygen.load import available_profiles, load_profile

    failed = 0
    for name in available_profiles():
        try:
            profile = load_profile(name)
        except UserError as exc:
            # Listed all the same, with why it does not load; the others are listed too.
            print(f"{name:<28} {'invalid':<10} {exc.problems[0]}")
            failed += 1
            continue
        kind = "base" if profile.abstract else f"{profile.get('gpu', 'count')}x {profile.get('gpu', 'type')}"
        print(f"{name:<28} {kind:<10} {profile.get('description', default='')}")
    return 1 if failed else 0


def cmd_new(args: argparse.Namespace) -> int:
    from deploygen.files import write_atomic
    from deploygen.load.scaffold import new_profile
    from deploygen.load.yaml_source import display_path

    path, text = new_profile(args.name, args.extends)
    write_atomic(path, text)
    print(f"{display_path(path)}: written")
    print(f"next: edit it, then `make validate PROFILE={args.name}` and `make render PROFILE={args.name}`")
    return 0


# --- plan -----------------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from deploygen.load.yaml_source import display_path
    from deploygen.pipeline import check_deployable
    from deploygen.plan.capacity import plan
    from deploygen.plan.report import check_chart_path, check_chartable, render_comparison, render_table, write_chart

    if args.chart is not None:
        check_chart_path(args.chart)
    checked = check_deployable(args.profile)
    report = plan(checked.profile, checked.catalog, active_hours=args.active_hours)
    if args.other is not None:
        other = check_deployable(args.other)
        second = plan(other.profile, other.catalog, active_hours=args.active_hours)
        print(json.dumps([report, second], indent=2) if args.json else render_comparison(report, second))
        return 0
    if args.chart is not None:
        check_chartable(report)  # before the table: a refused chart prints nothing
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    if args.chart is not None:
        write_chart(report, args.chart)
        print(f"{display_path(args.chart.resolve())}: written", file=sys.stderr)
    return 0


# --- operate: triage, smoke, bench ----------------------------------------------------------------


def cmd_triage(args: argparse.Namespace) -> int:
    import io

    from deploygen.operate.triage import run

    if args.log == "-" and sys.stdin.isatty():
        print(
            "triage: reading log lines from standard input; pipe a log in (make triage < deploy.log, or "
            "make triage FILE=deploy.log), or paste lines and end with Ctrl-D",
            file=sys.stderr,
        )
    # A log may hold characters the terminal's encoding cannot show; escape them rather than crash.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    return run(args.log, out=sys.stdout, color=args.color, show_all=args.show_all, data_path=args.data)


def cmd_smoke(args: argparse.Namespace) -> int:
    import os

    from deploygen.operate.smoke import PLAIN_REQUESTS, proxy_headers, smoke, summary_line
    from deploygen.pipeline import check_deployable

    requests, expected_model, profile = PLAIN_REQUESTS, None, None
    if args.profile:
        # The profile first: a wrong name or an invalid profile fails before any request is sent.
        checked = check_deployable(args.profile)
        profile = checked.profile
        requests, expected_model = checked.deployment.warmup or PLAIN_REQUESTS, profile.data["model"]["name"]
    headers = proxy_headers(profile)
    if not args.profile:
        print("no --profile: plain generation only (pass --profile to send the profile's warmup requests)")
    api_key = args.api_key if args.api_key is not None else os.environ.get("API_KEY", "")
    results = smoke(args.url, api_key, args.model, args.timeout, requests, expected_model, headers)
    print(summary_line(results))
    return 0 if all(r.passed for r in results) else 1


def cmd_bench(args: argparse.Namespace) -> int:
    import json
    import os

    from deploygen.operate.loadtest import bench, format_report, result_targets
    from deploygen.operate.smoke import proxy_headers
    from deploygen.pipeline import check

    # The profile first: a wrong name or an invalid profile fails before any load is sent.
    checked = check(args.profile) if args.profile else None
    headers = proxy_headers(checked.profile if checked else None)
    targets = checked.profile.get("targets", default={}) if checked else {}
    served = (args.profile, checked.profile.data["model"]["name"]) if checked else None
    api_key = args.api_key if args.api_key is not None else os.environ.get("API_KEY", "")
    result = bench(
        args.url,
        api_key,
        args.model,
        concurrency=args.concurrency,
        requests=args.requests,
        max_tokens=args.max_tokens,
        time_limit=args.time_limit,
        profile=served,
        headers=headers,
    )
    checks = result_targets(result, targets or {})
    if args.json:
        report = {**result.to_dict(), "targets": [{**vars(c), "passed": c.passed} for c in checks]}
        print(json.dumps(report, indent=2))
    else:
        print(format_report(result, checks, args.profile))
    return 0 if not result.errors and all(c.passed for c in checks) else 1


def cmd_model_add(args: argparse.Namespace) -> int:
    from deploygen.load.yaml_source import display_path
    from deploygen.models import load_model_facts
    from deploygen.models.add import add_model, parse_supplied

    path, written = add_model(args.repo, name=args.name, supplied=parse_supplied(args.set or []))
    facts = load_model_facts(path.stem)
    print(f"{display_path(path)}: written from {facts.repo} at commit {facts.commit}")
    if facts.attention in ("mha", "gqa"):
        geometry = f"{facts.kv_heads} KV heads x {facts.head_dim}"
    else:
        geometry = f"latent {facts.kv_lora_rank} + rope {facts.qk_rope_head_dim}"
    hybrid = f", {facts.linear_attention_layers} linear-attention layers" if facts.hybrid_linear_attention else ""
    print(
        f"  {facts.architecture}: {facts.layers} layers{hybrid}, {facts.attention} attention ({geometry}), "
        f"max context {facts.max_context:,}, checkpoint {facts.checkpoint_gb:,.1f} GB ({facts.quantization})"
    )
    kv = ", ".join(f"{facts.kv_bytes_per_token(dtype):,} B in {dtype}" for dtype in ("bfloat16", "fp8_e4m3"))
    print(f"  KV cache per token, whole model: {kv}")
    print(f"  a profile uses it with model.repo: {facts.repo} and model.facts: {path.stem}")
    return 0


def cmd_catalog_add(args: argparse.Namespace) -> int:
    from deploygen.sglang.add_release import add_releases

    for line in add_releases(args.versions):
        print(line)
    return 0


# --- arguments ------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _profile_or_all(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("profile", nargs="?", help="profile name or path")
    target.add_argument("--all", action="store_true", help="every profile in profiles/")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")


def _validate_args(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("profiles", nargs="*", default=[], metavar="PROFILE", help="profile names or paths")
    target.add_argument("--all", action="store_true", help="every profile in profiles/")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")


def _render_args(parser: argparse.ArgumentParser) -> None:
    _profile_or_all(parser)
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write DIR/deploy.py instead of generated/<profile>/deploy.py, or - for standard output "
        "(needed for a profile outside profiles/)",
    )


def _check_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profiles", nargs="*", metavar="PROFILE", help="only these profiles (default: every one)")


def _new_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the new profile's name: profiles/NAME.yaml")
    parser.add_argument("--extends", required=True, metavar="PARENT", help="the profile it builds on")


def _explain_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile")
    parser.add_argument("--field", help="print only this dotted field, e.g. app.name")


def _diff_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a")
    parser.add_argument("b")


def _plan_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", help="profile name or path")
    parser.add_argument("other", nargs="?", help="a second profile: print the two plans' headline numbers side by side")
    parser.add_argument(
        "--active-hours",
        type=float,
        default=8.0,
        metavar="H",
        help="hours of traffic a day, for the scale-to-zero cost (0-24, default 8)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON: every number with unit and source")
    parser.add_argument(
        "--chart", type=Path, metavar="FILE", help="also write cost vs active hours to FILE.svg or .png"
    )


def _triage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", nargs="?", default="-", help="log file, or - for standard input (default)")
    parser.add_argument("--all", dest="show_all", action="store_true", help="also print unmatched lines")
    parser.add_argument("--color", action="store_true", help="color the severity tags")
    parser.add_argument("--data", type=Path, metavar="FILE", help="the pattern file (default: data/triage.yaml)")


def _endpoint_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the deployment's base URL (without /v1)")
    parser.add_argument("--api-key", help="the server's API key (default: $API_KEY)")
    parser.add_argument("--model", help="the served model name (default: the first of /v1/models)")


def _smoke_args(parser: argparse.ArgumentParser) -> None:
    _endpoint_args(parser)
    parser.add_argument(
        "--timeout", type=float, default=SMOKE_TIMEOUT_S, help=f"seconds per request (default {SMOKE_TIMEOUT_S:g})"
    )
    parser.add_argument("--profile", help="send this profile's warmup requests (default: plain generation only)")


def _bench_args(parser: argparse.ArgumentParser) -> None:
    _endpoint_args(parser)
    parser.add_argument("--concurrency", type=_positive_int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--requests", type=_positive_int, default=32, help="requests in all (default 32)")
    parser.add_argument("--max-tokens", type=_positive_int, default=64, help="max_tokens per request (default 64)")
    parser.add_argument("--profile", help="compare p50 TTFT and TPOT with this profile's targets")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--time-limit",
        type=_positive_float,
        default=BENCH_TIME_LIMIT_S,
        help=f"seconds for the whole run; requests not done by then are unfinished (default {BENCH_TIME_LIMIT_S:g})",
    )


def _model_args(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="model_command", required=True)
    add = actions.add_parser(
        "add",
        help="write data/models/NAME.yaml from a Hugging Face checkpoint",
        description="Read config.json, the safetensors index and file sizes through huggingface_hub (token from "
        "HF_TOKEN or `hf auth login`; HF_ENDPOINT picks the Hub) and write data/models/NAME.yaml.",
    )
    add.add_argument("repo", metavar="REPO[@REVISION]", help="e.g. Qwen/Qwen3-8B or Qwen/Qwen3-8B@main")
    add.add_argument("--name", help="the file name, as profiles name it in model.facts (default: REPO's name, lower)")
    add.add_argument(
        "--set",
        action="append",
        metavar="FACT=VALUE",
        help="a fact config.json lacks or gets wrong, given by hand (repeatable)",
    )
    add.set_defaults(func=cmd_model_add)


def _catalog_args(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="catalog_command", required=True)
    add = actions.add_parser(
        "add",
        help="extract the flag catalog of SGLang releases from their PyPI wheels",
        description="Download each wheel, build `sglang serve`'s parser with stand-ins for the GPU stack, and "
        "write schema/sglang/VERSION.json (or map a post-release to its release's catalog when the parser is "
        "the same) and its record in schema/sglang/index.json.",
    )
    add.add_argument("versions", nargs="+", metavar="VERSION", help="e.g. 0.5.24 (several: oldest first)")
    add.set_defaults(func=cmd_catalog_add)


def _no_args(parser: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None
    # Output that shows profile strings is escaped and masked (deploygen.terminal); `triage` prints log
    # lines its own way (and colours them), smoke and bench print their own progress.
    shows_profile_text: bool = True


COMMANDS: tuple[Command, ...] = (
    Command("render", "validate and render generated/<profile>/deploy.py", _render_args, cmd_render),
    Command("validate", "validate without writing anything", _validate_args, cmd_validate),
    Command("check", "fail when a committed render is stale or edited", _check_args, cmd_check),
    Command("new", "write profiles/NAME.yaml: a commented child of PARENT, ready to edit", _new_args, cmd_new),
    Command("explain", "the resolved profile with the file:line of every value", _explain_args, cmd_explain),
    Command("diff", "diff two profiles' renders and resolved values", _diff_args, cmd_diff),
    Command("list", "the profiles", _no_args, cmd_list),
    Command(
        "plan", "memory, concurrency, monthly cost and cold start of a profile (or two, compared)", _plan_args, cmd_plan
    ),
    Command(
        "triage", "classify log lines; exit 1 on a fatal pattern", _triage_args, cmd_triage, shows_profile_text=False
    ),
    Command("model", "model facts: `model add REPO[@REVISION]` reads them from the Hub", _model_args, cmd_model_add),
    Command(
        "catalog",
        "SGLang flag catalogs: `catalog add VERSION` extracts a release's from its PyPI wheel",
        _catalog_args,
        cmd_catalog_add,
    ),
    Command(
        "smoke",
        "one request per path (chat, no-thinking, long-context, tool-call) against a deployment",
        _smoke_args,
        cmd_smoke,
        "Exit status 0 only when every path passes. Behind Modal's proxy auth (the profile's "
        "server.unauthenticated: false), the Modal-Key/Modal-Secret headers come from $MODAL_PROXY_KEY and "
        "$MODAL_PROXY_SECRET.",
        shows_profile_text=False,
    ),
    Command(
        "bench",
        "load-test a deployment with streamed chat completions",
        _bench_args,
        cmd_bench,
        "Exit status 0 only when no request failed and every target of --profile passed. Behind Modal's proxy "
        "auth (the profile's server.unauthenticated: false), the Modal-Key/Modal-Secret headers come from "
        "$MODAL_PROXY_KEY and $MODAL_PROXY_SECRET.",
        shows_profile_text=False,
    ),
)


def build_parser(prog: str = "generate.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="SGLang-on-Modal deployment generator")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command_parser = sub.add_parser(command.name, help=command.help, description=command.description)
        command.arguments(command_parser)
        command_parser.set_defaults(func=command.run, command_spec=command)
    return parser


def console() -> None:
    """The `deploygen` console script (pyproject.toml): the same commands as generate.py."""
    sys.exit(main(prog="deploygen"))


def _without_secrets(argv: list[str]) -> list[str]:
    """The arguments with the value of any secret-named option (--api-key KEY, --api-key=KEY) hidden."""
    from deploygen.secrets import secret_name

    shown = []
    for index, arg in enumerate(argv):
        option, equals, _ = arg.partition("=")
        if option.startswith("--") and equals and secret_name(option):
            arg = f"{option}=***"
        elif index and argv[index - 1].startswith("--") and secret_name(argv[index - 1]):
            arg = "***"
        shown.append(arg)
    return shown


def main(argv: list[str] | None = None, prog: str = "generate.py") -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(prog).parse_args(argv)
    if args.command_spec.shows_profile_text:
        from deploygen.terminal import SafeStream

        sys.stdout, sys.stderr = SafeStream(sys.stdout), SafeStream(sys.stderr)
    try:
        return args.func(args)
    except DeploygenError as exc:
        print(exc, file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # A file no step expected to fail on: still one located message.
        from deploygen.errors import os_problem
        from deploygen.load.yaml_source import display_path

        shown = display_path(Path(exc.filename)) if exc.filename else prog
        print(os_problem(exc, shown, f"run `{args.command}`"), file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, never a traceback
        from deploygen.terminal import printable

        command = " ".join([prog, *(shlex.quote(a) for a in _without_secrets(argv))])
        print(
            "internal error, please report it with the command and this message:\n"
            f"    command: {printable(command)}\n"
            f"    error: {type(exc).__name__}: {printable(str(exc))}",
            file=sys.stderr,
        )
        return 1
