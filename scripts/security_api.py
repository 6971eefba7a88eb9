"""Talk to the server under attack: wait for it, log in, lay out test data.

    python scripts/security_api.py wait BASE_URL
    python scripts/security_api.py token BASE_URL EMAIL PASSWORD
    python scripts/security_api.py prepare BASE_URL TOKEN

scripts/security_sqlmap.py imports `fixtures()` and `customer_rows()` for
the values its targets send, by input name as shop/api_inventory.py:Values
reads them: a SKU, a slug, filters that give a list two pages, the schema's
language, a cart line and an order of the attacking customer, and
`next_cursor()` for a cursor.
"""

import sys
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import requests

TIMEOUT = 10
ADDRESS = {
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


class Api:
    def __init__(
        self, base: str, token: str | None = None, email: str = "", password: str = ""
    ):
        self.base = base.rstrip("/")
        self.token = token
        self.email = email
        self.password = password
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, expect: int, **kwargs):
        response = self.session.request(
            method, self.base + path, timeout=TIMEOUT, **kwargs
        )
        if response.status_code != expect:
            raise SystemExit(
                f"{method} {path}: expected {expect}, got {response.status_code} "
                f"{response.text[:300]}"
            )
        return response.json() if response.content else None


def wait(base: str, seconds: float = 60) -> None:
    """Return once /healthz says every service is ok, or exit saying why not."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{base}/healthz", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except requests.ConnectionError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise SystemExit(f"the server at {base} is not healthy after {seconds}s: {last}")


def token(base: str, email: str, password: str) -> str:
    body = {"email": email, "password": password}
    return Api(base).call("POST", "/api/v1/auth/token/", 200, json=body)["token"]


def customer(base: str, email: str, password: str) -> Api:
    """A new customer of its own, so no other run's requests touch its cart."""
    Api(base).call(
        "POST",
        "/api/v1/auth/register/",
        201,
        json={"email": email, "password": password},
    )
    return Api(base, token(base, email, password), email, password)


def _two_page_filters(anonymous: Api, products: list[dict]) -> dict[str, str]:
    """Values for every filter of the product list that still give two pages."""
    for product in products:
        filters = {
            "category": product["category"],
            "search": product["name"].split()[-1].lower(),
            "min_price": "1",
            "max_price": "100000",
            "in_stock": "true",
            "ordering": "price",
            "page_size": "1",
        }
        page = anonymous.call("GET", "/api/v1/products/", 200, params=filters)
        if page["next"]:
            return filters
    raise SystemExit("no filtered product list has two pages: seed more products")


class OnePage(SystemExit):
    """The list has no second page, so the API gives no cursor to start from."""


def next_cursor(caller: Api, path: str, query: dict[str, str]) -> str:
    """The cursor of a list's second page: only the API can make a valid one."""
    query = {k: v for k, v in query.items() if k != "cursor"}
    page = caller.call("GET", path, 200, params=query)
    if not page["next"]:
        raise OnePage(f"GET {path}?{query} has one page: no cursor to start from")
    return parse_qs(urlsplit(page["next"]).query)["cursor"][0]


def in_stock(anonymous: Api) -> tuple[list[dict], str]:
    """Products in stock, newest first, and the first one's first SKU."""
    products = anonymous.call(
        "GET", "/api/v1/products/", 200, params={"in_stock": "true"}
    )["results"]
    detail = anonymous.call("GET", f"/api/v1/products/{products[0]['slug']}/", 200)
    return products, detail["variants"][0]["sku"]


def add_to_cart(customer: Api, sku: str) -> dict:
    line = {"sku": sku, "quantity": 1}
    return customer.call("POST", "/api/v1/cart/items/", 201, json=line)


def buy(customer: Api, sku: str) -> dict:
    add_to_cart(customer, sku)
    return customer.call(
        "POST",
        "/api/v1/checkout/",
        201,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"shipping_address": ADDRESS, "payment_token": "tok_ok"},
    )


def fixtures(base: str, staff: Api, account: Api) -> dict:
    """Values for the inputs every target may have, by input name.

    Real values, so that each baseline request reaches the SQL: `account`'s
    e-mail logs in at the token endpoint and is taken at registration (the
    same 400 after the e-mail lookup every time, never a 201 once); the SKU
    is taken, so that a product created with it is refused after its
    category and SKU lookups; a declined payment leaves the cart full, so
    every checkout runs again.
    """
    anonymous = Api(base)
    products, sku = in_stock(anonymous)
    stock = staff.call("GET", f"/api/v1/stock/{sku}/", 200)
    return {
        "email": account.email,
        "password": account.password,
        **_two_page_filters(anonymous, products),
        "slug": products[0]["slug"],
        "sku": sku,
        "name": "Sqlmap lamp",
        "description": "Warm.",
        "price": "9.99",
        # The staff PATCHes of a product and a variant: true keeps the
        # product listed, so the catalog's baseline requests keep their rows.
        "is_active": True,
        "stock": 2,
        "warehouse": stock["warehouses"][0]["warehouse"],
        "quantity_on_hand": 500,
        "quantity": 1,
        **ADDRESS,
        "line2": "Flat 2",
        "payment_token": "tok_declined",
        "coupon": "WELCOME10",
        # The schema page's: a language of settings.LANGUAGES.
        "lang": "en",
        # The staff reports' (analytics/api/): a window over the seed's
        # history (its orders are dated 2023 and 2024), at most 367 days.
        "since": "2024-01-01",
        "until": "2025-01-01",
        "min_orders": 1,
        "top": 3,
        "limit": 10,
        # The top statements' ranking (shop/observability/api.py).
        "order": "total",
        # The event log's (analytics/event_log.py): one customer's events of
        # one type; its store is empty on the scratch server (security.sh),
        # so any customer id gives the same real answer.
        "customer": 1,
        "type": "order.placed",
    }


def customer_rows(customer: Api, sku: str) -> dict[str, int]:
    """Give a customer what random requests rarely make: orders and a cart.

    A paid order and a cancelled one (two orders: the list has a second
    page at page_size=1), and a line in the cart. Cancelling the cancelled
    order again is the same 409 every time, and reading it a 200.
    """
    buy(customer, sku)
    cancelled = buy(customer, sku)
    customer.call("POST", f"/api/v1/orders/{cancelled['id']}/cancel/", 200)
    line = add_to_cart(customer, sku)
    return {"item_id": line["id"], "order_id": cancelled["id"]}


def prepare(base: str, token: str) -> None:
    """A customer's orders and cart, so schemathesis checks non-empty bodies too."""
    _, sku = in_stock(Api(base))
    customer_rows(Api(base, token), sku)


def main(argv: list[str]) -> int:
    if argv[:1] == ["wait"] and len(argv) == 2:
        wait(argv[1])
        return 0
    if argv[:1] == ["token"] and len(argv) == 4:
        print(token(*argv[1:]))
        return 0
    if argv[:1] == ["prepare"] and len(argv) == 3:
        prepare(*argv[1:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
