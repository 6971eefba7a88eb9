"""sqlmap against every parameter of the API that reaches SQL.

    python scripts/security_sqlmap.py BASE_URL OUT_DIR

Run by scripts/security.sh against the scratch server. Each target below is
one request sqlmap starts from: real values (a SKU, a cart line, an order of
the customer attacking it) so that its baseline is a real answer, not an
error every payload would also get. sqlmap then varies one parameter at a
time. Its transcript goes to OUT_DIR/sqlmap/NAME.log and the verdicts, read
by scripts/security_report.py:parse_sqlmap, to OUT_DIR/sqlmap.json.

Bounds, from the environment: SQLMAP_LEVEL (1-5), SQLMAP_RISK (1-3),
SQLMAP_TECHNIQUE (B boolean, E error, U union, S stacked, T time, Q inline),
SQLMAP_TIMEOUT (seconds per request), SQLMAP_MAX_SECONDS (per target).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import security_api as api
from security_report import parse_sqlmap

HERE = Path(__file__).resolve().parent
SQLMAP = Path(sys.executable).with_name("sqlmap")
TAMPER = HERE / "sqlmap_tamper" / "fresh_idempotency_key.py"
PASSWORD = "a-long-passphrase-9"
# A target that takes longer is stopped and counts as not tested.
MAX_SECONDS = int(os.environ.get("SQLMAP_MAX_SECONDS", "600"))
ADDRESS = {**api.ADDRESS, "line2": "Flat 2"}


@dataclass
class Target:
    """One request for sqlmap; `*` in the URL or a header marks a parameter."""

    name: str
    url: str
    token: str | None = None
    method: str = "GET"
    data: dict | None = None
    headers: dict = field(default_factory=dict)
    # The parameters sqlmap must report as tested, as it names them
    # ("email", "#1*" for the URL's marker, "Idempotency-Key #1*").
    expect: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # more sqlmap options


def targets(base: str) -> list[Target]:
    staff = api.token(base, "staff@shop.test", "staff-pass-123")
    run = uuid.uuid4().hex[:8]
    shopper = api.customer(base, f"sqlmap-shopper-{run}@shop.test", PASSWORD)
    buyer = api.customer(base, f"sqlmap-buyer-{run}@shop.test", PASSWORD)
    rows = api.fixtures(base, shopper, buyer)
    # Registered already, so that every baseline request gets the same answer
    # (400 email_taken) after the e-mail lookup, instead of a 201 once.
    taken = api.customer(base, f"sqlmap-register-{run}@shop.test", PASSWORD)
    stock = api.Api(base, staff).call("GET", f"/api/v1/stock/{rows.sku}/", 200)
    warehouse = stock["warehouses"][0]["warehouse"]
    shopper_token, buyer_token = shopper.token, buyer.token
    v1 = f"{base}/api/v1"
    checkout_body = {
        "shipping_address": ADDRESS,
        # Declined: the stock is released and the cart stays full, so every
        # request of the run checks out again and each value reaches SQL.
        "payment_token": "tok_declined",
        "coupon": "WELCOME10",
    }
    body_fields = (*ADDRESS, "payment_token", "coupon")
    return [
        Target(
            "product-list",
            f"{v1}/products/?{rows.product_query}",
            expect=(
                "category",
                "search",
                "min_price",
                "max_price",
                "in_stock",
                "ordering",
                "cursor",
                "page_size",
            ),
        ),
        Target("product-slug", f"{v1}/products/{rows.slug}*/", expect=("#1*",)),
        Target(
            "auth-register",
            f"{v1}/auth/register/",
            method="POST",
            data={"email": taken.email, "password": PASSWORD},
            expect=("email", "password"),
        ),
        Target(
            "auth-token",
            f"{v1}/auth/token/",
            method="POST",
            data={"email": "customer@shop.test", "password": "customer-pass-123"},
            expect=("email", "password"),
        ),
        Target(
            "auth-header",
            f"{v1}/cart/",
            headers={"Authorization": f"Token {shopper_token}*"},
            expect=("Authorization #1*",),
            # Every changed token is refused: 401 is the answer to compare.
            extra=("--ignore-code=401",),
        ),
        Target("stock-sku", f"{v1}/stock/{rows.sku}*/", staff, expect=("#1*",)),
        Target(
            "stock-patch",
            f"{v1}/stock/{rows.sku}/",
            staff,
            method="PATCH",
            data={"quantity_on_hand": 500, "warehouse": warehouse},
            expect=("quantity_on_hand", "warehouse"),
        ),
        Target(
            "cart-item-add",
            f"{v1}/cart/items/",
            shopper_token,
            method="POST",
            data={"sku": rows.sku, "quantity": 1},
            expect=("sku", "quantity"),
        ),
        # With a JSON body sqlmap quotes its payloads for a numeric value in
        # the URL too (/items/"1 AND 1=1"/); either way only digits pass the
        # <int:> converter, so every payload is the same 404.
        Target(
            "cart-item-id",
            f"{v1}/cart/items/{rows.cart_item_id}*/",
            shopper_token,
            method="PATCH",
            data={"quantity": 2},
            expect=("#1*", "quantity"),
        ),
        Target(
            "order-id", f"{v1}/orders/{rows.order_id}*/", buyer_token, expect=("#1*",)
        ),
        Target(
            "checkout",
            f"{v1}/checkout/",
            buyer_token,
            method="POST",
            data=checkout_body,
            headers={"Idempotency-Key": f"sqlmap-{run}"},
            expect=body_fields,
            extra=(f"--tamper={TAMPER}",),
        ),
        Target(
            "checkout-key",
            f"{v1}/checkout/",
            buyer_token,
            method="POST",
            data=checkout_body,
            headers={"Idempotency-Key": f"sqlmap-key-{run}*"},
            expect=("Idempotency-Key #1*",),
            extra=("--skip=" + ",".join(body_fields),),
        ),
    ]


def command(target: Target, out: Path) -> list[str]:
    headers = dict(target.headers)
    if target.token and "Authorization" not in headers:
        headers["Authorization"] = f"Token {target.token}"
    argv = [
        str(SQLMAP),
        "--url",
        target.url,
        "--method",
        target.method,
        "--batch",
        "--flush-session",
        "--disable-coloring",
        "--skip-waf",
        "--dbms=PostgreSQL",
        f"--level={os.environ.get('SQLMAP_LEVEL', '1')}",
        f"--risk={os.environ.get('SQLMAP_RISK', '1')}",
        f"--technique={os.environ.get('SQLMAP_TECHNIQUE', 'BEUSTQ')}",
        f"--timeout={os.environ.get('SQLMAP_TIMEOUT', '10')}",
        "--retries=1",
        f"--output-dir={out / target.name}",
        *target.extra,
    ]
    if headers:
        argv.append("--headers=" + "\n".join(f"{k}: {v}" for k, v in headers.items()))
    if target.data is not None:
        argv.append("--data=" + json.dumps(target.data))
    # Markers name their own parameters; the others are listed, which also
    # makes sqlmap test names it skips unasked ("payment_token" looks like a
    # CSRF token to it).
    if "*" not in target.url and not any("*" in v for v in headers.values()):
        argv += ["-p", ",".join(target.expect)]
    return argv


def redact(argv: list[str], tokens: set[str]) -> str:
    text = " ".join(argv)
    for token in tokens:
        text = text.replace(token, "<token>")
    return text


def run(target: Target, logs: Path, secrets: set[str]) -> dict:
    """Run sqlmap on one target; its transcript to logs/NAME.log, its verdict back."""
    started = time.monotonic()
    argv = command(target, logs)
    try:
        # TERM=dumb: sqlmap's terminal set-up codes would litter the log.
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            env={**os.environ, "TERM": "dumb"},
            timeout=MAX_SECONDS,
        )
        transcript, exit_code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or b""
        if isinstance(partial, bytes):
            partial = partial.decode(errors="replace")
        transcript = f"{partial}\n[security] [ERROR] stopped after {MAX_SECONDS}s\n"
        exit_code = None
    (logs / f"{target.name}.log").write_text(transcript)
    return {
        "target": target.name,
        "command": redact(argv, secrets),
        "exit_code": exit_code,
        "seconds": round(time.monotonic() - started, 1),
        **asdict(parse_sqlmap(transcript, expect=target.expect)),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # Stopped (scripts/security.sh's trap): exit through Python, so that
    # subprocess.run kills the sqlmap it is waiting for instead of leaving it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base, out_dir = argv[0].rstrip("/"), Path(argv[1])
    logs = out_dir / "sqlmap"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    all_targets = targets(base)
    secrets = {t.token for t in all_targets if t.token} | {
        t.headers["Authorization"].split()[-1].rstrip("*")
        for t in all_targets
        if "Authorization" in t.headers
    }
    results = []
    for target in all_targets:
        results.append(run(target, logs, secrets))
        print(
            f"[security] sqlmap {target.name}: {results[-1]['status']} "
            f"({results[-1]['seconds']}s)"
        )
    (out_dir / "sqlmap.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
