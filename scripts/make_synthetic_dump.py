#!/usr/bin/env python3
"""Writes a large Pushshift-style dump for benchmarking the dump source.

The posts are the bundled sample corpus repeated with fresh ids and spread-out
timestamps, compressed like the real dumps (`zstd --long=31`):

    scripts/make_synthetic_dump.py --posts 1000000 --out /tmp/RS_synthetic.zst
"""
import argparse
import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posts", type=int, default=1_000_000)
    p.add_argument("--out", type=pathlib.Path, required=True, help="a .zst or .ndjson path")
    args = p.parse_args()
    sample = [json.loads(line) for line in (ROOT / "data/sample/posts.ndjson").read_text().splitlines() if line.strip()]
    compress = args.out.suffix == ".zst"
    with open(args.out, "wb") as out:
        sink = subprocess.Popen(["zstd", "-q", "-3", "--long=31", "-c"], stdin=subprocess.PIPE, stdout=out) if compress else None
        write = sink.stdin.write if sink else out.write
        for i in range(args.posts):
            post = dict(sample[i % len(sample)])
            post["id"] = f"syn{i:x}"
            post["created_utc"] = 1_500_000_000 + i * 7
            write((json.dumps(post) + "\n").encode())
        if sink:
            sink.stdin.close()
            if sink.wait() != 0:
                raise SystemExit("zstd failed")
    print(f"wrote {args.posts} posts to {args.out}")


if __name__ == "__main__":
    main()
