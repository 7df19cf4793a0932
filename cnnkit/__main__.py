"""`python -m cnnkit list [--family F]`, `python -m cnnkit summary NAME` and
`python -m cnnkit bench NAME [--batch N] [--steps N] [--precision P] [--train|--infer]
[--input-size S] [--peak-tflops T] [--json]`."""

import argparse
import json
import sys


def _list(family):
    import cnnkit

    rows = [("name", "family", "year", "input", "min", "reference params", "paper")]
    for name in cnnkit.list_models(family):
        info = cnnkit.model_info(name)
        ref = f"{info.params:,}" if info.params is not None else "-"
        rows.append((name, info.family, str(info.year), "x".join(map(str, info.input_shape)),
                     str(info.min_size), ref, info.paper))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [c.rjust(w) if i == 5 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells + [row[-1]]))
    print(f"{len(rows) - 1} models")


def _summary(name):
    import cnnkit
    from cnnkit.analysis import count_params

    info = cnnkit.model_info(name)
    model = cnnkit.build(name)
    model.summary()
    count = count_params(model)
    print(f"{name}: {count:,} trainable parameters at input {info.input_shape}, "
          f"{info.classes} classes")
    if info.params is None:
        print("reference: none recorded")
    else:
        verdict = "equal" if count == info.params else f"DIFFERENT by {count - info.params:+,}"
        print(f"reference: {info.params:,} (published or derived; tests/reference.py names the "
              f"source): {verdict}")
    print(f"paper: {info.citation}")
    return 0 if info.params in (None, count) else 1


def _bench(args):
    from cnnkit.bench import bench

    result = bench(args.name, batch=args.batch, steps=args.steps, mode=args.mode,
                   precision=args.precision, input_size=args.input_size, peak=args.peak_tflops,
                   show_progress=not args.json)
    print(json.dumps(result.as_dict()) if args.json else result)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cnnkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="print the registry")
    p_list.add_argument("--family", default=None)
    p_sum = sub.add_parser("summary", help="print a model's summary and its parameter count")
    p_sum.add_argument("name")
    p_bench = sub.add_parser("bench", help="time training or inference steps: images/s, MFU")
    p_bench.add_argument("name")
    p_bench.add_argument("--batch", type=int, default=32)
    p_bench.add_argument("--steps", type=int, default=10, help="timed steps, after 2 warm-up")
    p_bench.add_argument("--precision", default="float32",
                         help="float32, mixed_bfloat16 or mixed_float16")
    mode = p_bench.add_mutually_exclusive_group()
    mode.add_argument("--train", dest="mode", action="store_const", const="train")
    mode.add_argument("--infer", dest="mode", action="store_const", const="infer")
    p_bench.set_defaults(mode="train")
    p_bench.add_argument("--input-size", type=int, default=None,
                         help="square input side (default: the model's own)")
    p_bench.add_argument("--peak-tflops", type=float, default=None,
                         help="the device's peak, for MFU where cnnkit's table has none")
    p_bench.add_argument("--json", action="store_true", help="one line of JSON, no progress")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            _list(args.family)
            return 0
        if args.command == "bench":
            return _bench(args)
        return _summary(args.name)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
