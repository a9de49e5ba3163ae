"""The ``minideep`` command: ``demo``, ``gradcheck``, ``bench``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


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


def cmd_demo(args: argparse.Namespace) -> int:
    """Train the CNN + LSTM action recogniser on video and write its plots."""
    from minideep import demo

    if args.epochs is not None and args.epochs < 1:
        raise CommandError(f"--epochs must be at least 1, got {args.epochs}")
    if args.data is not None and not Path(args.data).is_dir():
        raise CommandError(f"--data {args.data}: not a readable directory")
    try:
        summary = demo.run(
            out_dir=args.out,
            epochs=args.epochs,
            seed=args.seed,
            device=args.device,
            data_dir=args.data,
            progress=not args.no_progress,
            sizes=demo.FAST_SIZES if args.fast else None,
        )
    except (FileNotFoundError, RuntimeError, ValueError, OSError) as err:
        raise CommandError(str(err).splitlines()[0]) from err
    print(
        f"\nheld-out accuracy: {summary['accuracy']:.1%} on the {len(summary['classes'])} "
        f"classes ({', '.join(summary['classes'])}) after {summary['epochs']} epochs"
    )
    print(f"time taken: {summary['seconds']:.1f} s")
    print("plots written:")
    for path in summary["plots"]:
        print(f"  {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time kernels and training steps (minideep vs PyTorch, CPU vs GPU) and print tables."""
    import minideep as md
    from minideep import bench

    devices = ["cpu"]
    if args.device in ("cuda", "all"):
        if not md.cuda.is_available():
            if args.device == "cuda":
                raise CommandError("--device cuda: CUDA is not available (is CuPy installed?)")
        else:
            devices.append("cuda")
    if args.device == "cuda":
        devices = ["cuda"]
    sections = {}
    for device in devices:
        if "kernels" in args.what:
            sections[f"kernels ({device})"] = bench.kernel_rows(
                device, repeats=args.repeats, quick=args.quick
            )
        if "workloads" in args.what:
            sections[f"training steps ({device})"] = bench.workload_rows(
                device, repeats=args.repeats, quick=args.quick
            )
        if "layers" in args.what and device == "cpu":
            from minideep.bench_layers import layer_rows

            sections["layers, forward + backward (cpu)"] = layer_rows(
                repeats=args.repeats, quick=args.quick
            )
    for title, rows in sections.items():
        print(f"\n## {title}\n")
        print(bench.format_table(rows))
    if args.out:
        path = bench.save_results(args.name, sections, args.out)
        print(f"\nresults written to {path} (and .json)")
    return 0


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

    p = sub.add_parser(
        "demo",
        help="train a CNN + LSTM to recognise motion direction in synthetic videos",
        description="Write the synthetic MovingShapes videos (or use --data), train a "
        "CNN-per-frame + LSTM action recogniser with a progress bar, print the held-out "
        "accuracy and the time taken, and write plots (learning curves, confusion matrix, "
        "test clips with predicted and true labels) as PNG files.",
    )
    p.add_argument("--out", default="minideep-demo", help="output folder (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train")
    p.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="your own videos: DIR/<class>/*.mp4 (or DIR/train/<class>, DIR/test/<class>)",
    )
    p.add_argument("--fast", action="store_true", help="a tiny setting, for a quick check")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "bench",
        help="benchmark kernels and training steps: CPU vs GPU, minideep vs PyTorch",
        description="Time matmul, conv2d, conv3d, max-pool and LSTM kernels and the cnn, "
        "lstm, mlp and tiny training steps, on NumPy and (with --device cuda/all) CuPy, "
        "beside PyTorch when it is installed. Prints Markdown tables.",
    )
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    p.add_argument(
        "--what",
        nargs="+",
        choices=["kernels", "workloads", "layers"],
        default=["kernels", "workloads"],
        help="what to time (layers: every layer type the lessons use, CPU)",
    )
    p.add_argument("--repeats", type=int, default=10, help="timed repeats per figure")
    p.add_argument(
        "--quick", action="store_true", help="batches of 2, one call each: a smoke test only"
    )
    p.add_argument("--out", default=None, help="also write <name>.json and <name>.md here")
    p.add_argument("--name", default="bench", help="file name for --out (default: bench)")
    p.set_defaults(func=cmd_bench)
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
    except BrokenPipeError:  # the output was piped into a program that stopped reading
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
