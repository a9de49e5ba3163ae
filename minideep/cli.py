"""The ``minideep`` command: ``demo``, ``gradcheck``, ``bench``."""

from __future__ import annotations

import argparse
import sys
import time


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Gradient-check every registered differentiable op and print a table."""
    import minideep  # noqa: F401  (registers every op)
    from minideep.autograd import BUILTIN_FUNCTIONS
    from minideep.checks import all_cases, functions_used, run_case

    device = args.device
    if device == "cuda":
        import minideep as md

        if not md.cuda.is_available():
            raise CommandError("--device cuda: CUDA is not available (is CuPy installed?)")
    cases = [c for c in all_cases() if not args.filter or args.filter in c.name]
    failed = 0
    covered = set()
    width = max((len(c.name) for c in cases), default=10)
    print(f"{'op':<{width}}  {'inputs':<28}  {'max error':>10}  result")
    for case in cases:
        shapes = ", ".join("x".join(map(str, s.shape)) or "scalar" for s in case.specs)
        start = time.perf_counter()
        try:
            error = run_case(case, device=device)
            result, shown = "pass", f"{error:10.2e}"
        except Exception as exc:  # a failing check must not stop the table
            failed += 1
            result, shown = f"FAIL: {exc}", f"{'-':>10}"
        covered |= functions_used(case)
        elapsed = time.perf_counter() - start
        line = f"{case.name:<{width}}  {shapes:<28.28}  {shown}  {result}"
        print(line + (f"  ({elapsed:.1f}s)" if args.verbose else ""))
    unchecked = [f.__name__ for f in BUILTIN_FUNCTIONS if f not in covered]
    print(f"\n{len(cases) - failed} passed, {failed} failed")
    if unchecked and not args.filter:
        print("ops without a check: " + ", ".join(sorted(unchecked)))
        return 1
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minideep",
        description="minideep: a deep-learning engine from scratch on NumPy and CuPy.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "gradcheck",
        help="check the gradient of every differentiable op against finite differences",
        description="Run the float64 finite-difference gradient check of every registered "
        "op and print a table (op, inputs, max error, result). Exit status 1 if any fails.",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run")
    p.add_argument("--filter", default="", help="only cases whose name contains this text")
    p.add_argument("-v", "--verbose", action="store_true", help="show the time of each case")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except CommandError as err:
        print(f"minideep {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minideep {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
