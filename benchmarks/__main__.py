"""``python -m benchmarks NAME`` runs one benchmark; ``all`` runs every one; ``list`` lists them."""

from __future__ import annotations

import sys

from benchmarks.harness import available, run_one


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in ("-h", "--help", "list"):
        print("benchmarks:", ", ".join(names) or "none")
        return 0 if argv else 2
    todo = names if argv[0] == "all" else argv
    unknown = [n for n in todo if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    for name in todo:
        path = run_one(name)
        print(f"{name}: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
