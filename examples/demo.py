"""A live deltaflow pipeline: a Python source streams orders, a groupby keeps per-product
totals up to date in an embedded SQLite database, and every change is also written to CSV and
JSON lines files, all in ``out/``.

Run it with ``make demo`` (or ``python examples/demo.py``); it ends by itself after about
three seconds of streaming.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from pathlib import Path

import deltaflow as pw

PRODUCTS = ["apple", "pear", "plum", "fig", "kiwi"]


class Order(pw.Schema):
    product: str
    quantity: int
    price: float


class OrderStream(pw.io.python.ConnectorSubject):
    """Emits a few orders every 100 ms for ``seconds`` seconds, one commit per tick."""

    def __init__(self, seconds: float = 3.0) -> None:
        super().__init__()
        self.seconds = seconds

    def run(self) -> None:
        rng = random.Random(42)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            for _ in range(rng.randint(1, 5)):
                self.next(
                    product=rng.choice(PRODUCTS),
                    quantity=rng.randint(1, 10),
                    price=round(rng.uniform(0.2, 3.0), 2),
                )
            self.commit()
            time.sleep(0.1)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path("out")
    out.mkdir(exist_ok=True)

    orders = pw.io.python.read(OrderStream(), schema=Order, name="orders")
    priced = orders.select(
        pw.this.product, pw.this.quantity, amount=pw.this.quantity * pw.this.price
    )
    totals = priced.groupby(pw.this.product).reduce(
        pw.this.product,
        orders=pw.reducers.count(),
        quantity=pw.reducers.sum(pw.this.quantity),
        revenue=pw.reducers.sum(pw.this.amount),
    )
    pw.io.csv.write(totals, out / "totals.csv", name="totals-csv")
    pw.io.jsonlines.write(totals, out / "totals.jsonl", name="totals-jsonl")
    # The SQLite table always equals the current totals (one transaction per minibatch).
    pw.io.sqlite.write(
        totals,
        out / "demo.db",
        "totals",
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[totals.product],
        name="totals-sqlite",
    )

    started = time.monotonic()
    pw.run()
    print(
        f"streamed for {time.monotonic() - started:.1f} s; every change of the per-product "
        f"totals (with time and diff columns) is in {out / 'totals.csv'} and "
        f"{out / 'totals.jsonl'}"
    )
    with sqlite3.connect(out / "demo.db") as db:
        rows = db.execute(
            "SELECT product, orders, quantity, round(revenue, 2) FROM totals ORDER BY product"
        ).fetchall()
    print(f"current totals in {out / 'demo.db'} (table 'totals'):")
    for product, orders, quantity, revenue in rows:
        print(f"  {product:<6} orders={orders:<4} quantity={quantity:<5} revenue={revenue}")


if __name__ == "__main__":
    main()
