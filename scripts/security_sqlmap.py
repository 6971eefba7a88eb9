"""sqlmap against every input of the API, planned from its OpenAPI schema.

    python scripts/security_sqlmap.py BASE_URL OUT_DIR

Run by scripts/security.sh against the scratch server, with Django configured
as the server is. The requests are planned from the same inventory the
permission and hostile-input tests walk (shop/api_inventory.py), so a new
endpoint is attacked without anyone adding a target (`attacks`):

1. Each operation gets one request for its query parameters, its JSON body
   fields and its path parameters. A path parameter is attacked once per
   path, by the first method in the schema's order (GET first): the URL
   converter decides what reaches any of them, and a DELETE would not give
   the same answer twice. Path parameters are marked in the URL (`*`); once
   there is a mark sqlmap tests only marked places in the URL, so the query
   values are marked too. Without one, the parameters are named with -p.
2. Each header parameter (Idempotency-Key) gets a request of its own, marked
   in the header, with the operation's other inputs skipped: rule 1's
   request tests them. A header that must be new on every request is given
   a fresh value per payload by a tamper script in rule 1's request
   (FRESH_HEADER_TAMPERS).
3. The token header is the same code on every operation: it is attacked
   once, on the first operation that needs a login and takes nothing else,
   and every changed token is refused, so 401 is the answer to compare.
4. The pages outside the schema (inventory.PAGES: the schema itself, the
   docs pages, the session login) are attacked in their query parameters,
   once per page (its first method, GET): every method of a page is the
   same code. A parameter the page says sqlmap leaves alone
   (`not_attacked`, with the reason next to it in PAGES) is neither
   attacked nor sent.

Each request starts from real values (`targets`, from the live server by
scripts/security_api.py: a SKU, a cart line and an order of the customer
attacking it, a cursor the API made) so that its baseline is a real answer,
not an error every payload would also get. A customer operation is attacked
by a customer of its own, so that no request changes another's baseline.
sqlmap varies one parameter at a time. Its transcript goes to
OUT_DIR/sqlmap/NAME.log and the verdicts, read by
scripts/security_report.py:parse_sqlmap, to OUT_DIR/sqlmap.json.

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
from urllib.parse import quote

import django
import security_api as api
from security_report import parse_sqlmap

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The shop's packages: the inventory reads the schema the views make.
sys.path.insert(0, str(ROOT))

from shop import api_inventory as inventory  # noqa: E402 (needs ROOT on the path)
from shop.openapi import ANYONE, CUSTOMER, STAFF  # noqa: E402

SQLMAP = Path(sys.executable).with_name("sqlmap")
TAMPER = HERE / "sqlmap_tamper" / "fresh_idempotency_key.py"
FRESH_HEADER_TAMPERS = {"Idempotency-Key": TAMPER}
PASSWORD = "a-long-passphrase-9"
STAFF_LOGIN = ("staff@shop.test", "staff-pass-123")
# A target that takes longer is stopped and counts as not tested.
MAX_SECONDS = int(os.environ.get("SQLMAP_MAX_SECONDS", "600"))
MARK = "*"
WHERE = "scripts/security_api.py:fixtures"
EVENT_LOG = "/api/v1/analytics/events/"


@dataclass(frozen=True)
class Attack:
    """One request sqlmap starts from, as planned from the inventory."""

    name: str
    operation: inventory.Operation
    url_marks: tuple[inventory.Input, ...] = ()  # path, then query values
    listed: tuple[inventory.Input, ...] = ()  # query (-p) and JSON body fields
    header: inventory.Input | None = None  # marked in its header
    skip: tuple[str, ...] = ()  # inputs another request tests
    tamper: Path | None = None
    ignore_code: int | None = None

    @property
    def expect(self) -> tuple[str, ...]:
        """The parameters sqlmap must report as tested, as it names them.

        "#1*" for the URL's first mark, "Idempotency-Key #1*" for a header's,
        a JSON field by its own name: two fields with one name (a product's
        and its variant's `name`) are one parameter to sqlmap.
        """
        names = [f"#{n}{MARK}" for n in range(1, len(self.url_marks) + 1)]
        names += [i.field_name for i in self.listed]
        if self.header is not None:
            names.append(f"{self.header.name} #1{MARK}")
        return tuple(dict.fromkeys(names))

    def pairs(self) -> set[tuple[str, str, str, str]]:
        """(method, path, where, name) for each input this request attacks."""
        attacked = [*self.url_marks, *self.listed]
        attacked += [self.header] if self.header else []
        op = self.operation
        return {(op.method, op.path, i.location, i.field_name) for i in attacked}


def attacks(
    operations: list[inventory.Operation], names: dict[str, str]
) -> list[Attack]:
    """The requests for sqlmap, by the rules above; `names` are the URL names.

    `operations`: the schema's, then the pages (inventory.PAGES).
    """
    planned, attacked_paths, token_attacked = [], set(), False
    for op in operations:
        base_name = _name(op, operations, names)
        paths = [
            i
            for i in op.inputs_in(inventory.PATH)
            if (op.path, i.name) not in attacked_paths
        ]
        attacked_paths |= {(op.path, i.name) for i in paths}
        query = op.inputs_in(inventory.QUERY)
        if not op.in_schema:
            query = [
                i
                for i in query
                if i.name not in dict(op.not_attacked)
                and (op.path, i.name) not in attacked_paths
            ]
            attacked_paths |= {(op.path, i.name) for i in query}
        body = [i for i in op.inputs_in(inventory.BODY) if not i.container]
        headers = [i for i in op.inputs_in(inventory.HEADER) if not i.credential]
        fresh = [
            FRESH_HEADER_TAMPERS[h.name]
            for h in headers
            if h.name in FRESH_HEADER_TAMPERS
        ]
        if paths or query or body:
            marks = (*paths, *query) if paths else ()
            listed = (*body,) if paths else (*query, *body)
            tamper = fresh[0] if fresh else None
            planned.append(Attack(base_name, op, marks, listed, tamper=tamper))
        others = tuple(dict.fromkeys(i.field_name for i in (*query, *body)))
        for header in headers:
            name = f"{base_name}-{header.name.lower()}"
            planned.append(Attack(name, op, header=header, skip=others))
        if not token_attacked and (credential := _login_only(op)) is not None:
            planned.append(
                Attack("auth-header", op, header=credential, ignore_code=401)
            )
            token_attacked = True
    return planned


def plan() -> list[Attack]:
    """The attacks on the shop as its URLconf stands: the schema, then PAGES."""
    operations = [*inventory.operations(), *inventory.PAGES]
    return attacks(operations, inventory.route_names())


def _login_only(op: inventory.Operation) -> inventory.Input | None:
    """The token header of a safe operation that needs it and nothing else."""
    if op.safe and len(op.inputs) == 1 and op.inputs[0].credential:
        return op.inputs[0] if op.inputs[0].required else None
    return None


def _name(op, operations, names) -> str:
    """The URL's name; with the method unless GET or the path's only one."""
    name = names.get(op.path) or op.path.strip("/").replace("/", "-")
    name = name.replace("{", "").replace("}", "")
    alone = sum(o.path == op.path for o in operations) == 1
    return name if alone or op.method == "GET" else f"{name}-{op.method.lower()}"


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


def target(base: str, attack: Attack, values: inventory.Values, token) -> Target:
    """The sqlmap request of `attack`, with `values` in every input."""
    op = attack.operation
    # Every query value the operation takes, so the baseline is a real
    # answer; a page's that sqlmap leaves alone are not sent.
    left_alone = set(dict(op.not_attacked))
    valid = inventory.valid_request(
        op, values, optional_query=True, leave_out=left_alone
    )
    marked = {i.name for i in attack.url_marks}
    path_values = {
        k: v + MARK if k in marked else v for k, v in valid.path_values.items()
    }
    query = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}{MARK if k in marked else ''}"
        for k, v in valid.query.items()
    )
    # fill_path percent-encodes the mark too; sqlmap looks for it as is.
    path = inventory.fill_path(op.path, path_values).replace(quote(MARK), MARK)
    headers = dict(valid.headers)
    if attack.header is not None:
        if attack.header.credential:
            headers[attack.header.name] = f"Token {token}{MARK}"
        else:
            headers[attack.header.name] += MARK
    extra = []
    if attack.tamper:
        extra.append(f"--tamper={attack.tamper}")
    if attack.skip:
        extra.append("--skip=" + ",".join(attack.skip))
    if attack.ignore_code:
        extra.append(f"--ignore-code={attack.ignore_code}")
    return Target(
        attack.name,
        f"{base}{path}" + (f"?{query}" if query else ""),
        token,
        op.method,
        valid.body,
        headers,
        attack.expect,
        tuple(extra),
    )


def targets(base: str) -> list[Target]:
    """Every attack of the schema, with values from the live server."""
    staff = api.Api(base, api.token(base, *STAFF_LOGIN))
    run = uuid.uuid4().hex[:8]
    # Registered already: its e-mail logs in, and registering it again is
    # the same 400 (after the e-mail lookup) on every request.
    account = api.customer(base, f"sqlmap-account-{run}@shop.test", PASSWORD)
    shared = api.fixtures(base, staff, account)
    result = []
    for attack in plan():
        audience = attack.operation.audience
        values = shared | {"Idempotency-Key": f"sqlmap-{attack.name}-{run}"}
        caller = api.Api(base)
        if audience == STAFF:
            caller = staff
        elif audience == CUSTOMER:
            email = f"sqlmap-{attack.name}-{run}@shop.test"
            caller = api.customer(base, email, PASSWORD)
            values |= api.customer_rows(caller, shared["sku"])
        elif audience != ANYONE:
            raise SystemExit(f"{attack.name}: no account of audience {audience!r}")
        values["cursor"] = _cursor(caller, values)
        values = inventory.Values(WHERE, values)
        result.append(target(base, attack, values, caller.token))
    return result


def _cursor(caller: api.Api, values: dict):
    """A cursor for the list at hand, made with the query values it goes with."""

    def cursor(operation: inventory.Operation) -> str:
        query = {
            i.name: str(values[i.name])
            for i in operation.inputs_in(inventory.QUERY)
            if i.name != "cursor" and i.name in values
        }
        path = inventory.path_for(operation, inventory.Values(WHERE, values))
        try:
            return api.next_cursor(caller, path, query)
        except api.OnePage:
            if path != EVENT_LOG:
                raise
            # The scratch server's event log is an empty mongomock store in
            # its own process (security.sh), so the list has no next page:
            # a cursor made by the code the API decodes it with instead.
            from datetime import UTC, datetime

            from analytics.event_log import encode_cursor

            return encode_cursor(datetime.now(UTC), str(uuid.uuid4()))

    return cursor


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
    # As the server under attack is configured (scripts/security.sh exports it).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings.local")
    django.setup()
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
