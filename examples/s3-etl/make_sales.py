"""Writes CSV sales data for etl.py: `make_sales.py DIR [--mb 1024] [--files 8]`.

Rows are `city,product,amount` with a header line in each file, drawn from a fixed seed so
two runs write the same bytes. Prints what a correct aggregation must find, as JSON:
{"rows": N, "bytes": B, "by_region": {"north": n, ...}}.
"""
import argparse
import csv
import json
import os
import random

CITIES = [
    "lille", "paris", "rouen", "lyon", "strasbourg",
    "marseille", "nice", "toulouse", "bordeaux", "nantes",
]
PRODUCTS = ["bread", "cheese", "wine", "coffee", "apples", "fish", "tea", "honey"]


def regions():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "regions.csv"), newline="") as f:
        return {row["city"]: row["region"] for row in csv.DictReader(f)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--mb", type=int, default=1024, help="total size in MiB")
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    region_of = regions()
    rng = random.Random(20261204)
    per_file = args.mb * 1024 * 1024 // args.files
    rows, written, by_region = 0, 0, {}
    for n in range(args.files):
        path = os.path.join(args.dir, f"sales-{n:04d}.csv")
        size = 0
        with open(path, "w", newline="") as f:
            f.write("city,product,amount\n")
            while size < per_file:
                # Whole batches of lines: far faster than one write per row.
                lines = []
                for _ in range(4096):
                    city = rng.choice(CITIES)
                    lines.append(f"{city},{rng.choice(PRODUCTS)},{rng.randrange(100, 100000) / 100}\n")
                    by_region[region_of[city]] = by_region.get(region_of[city], 0) + 1
                chunk = "".join(lines)
                f.write(chunk)
                size += len(chunk)
                rows += len(lines)
        written += os.path.getsize(path)
    print(json.dumps({"rows": rows, "bytes": written, "by_region": by_region}, sort_keys=True))


if __name__ == "__main__":
    main()
