"""Talk to the server under attack: wait for it, log in, lay out test data.

    python scripts/security_api.py wait BASE_URL
    python scripts/security_api.py token BASE_URL EMAIL PASSWORD
    python scripts/security_api.py prepare BASE_URL TOKEN

scripts/security_sqlmap.py imports `fixtures()` for the rows its targets
need (a SKU, a cart line, an order of the attacking customer, a cursor).
"""

import sys
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

TIMEOUT = 10
ADDRESS = {
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


class Api:
    def __init__(self, base: str, token: str | None = None, email: str = ""):
        self.base = base.rstrip("/")
        self.token = token
        self.email = email
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
    return Api(base, token(base, email, password), email)


@dataclass(frozen=True)
class Fixtures:
    product_query: str  # every filter of the product list, and a cursor
    slug: str
    sku: str
    cart_item_id: int
    order_id: int


def _product_query(anonymous: Api, products: list[dict]) -> str:
    """The second page of a list that uses every filter: all of them in one URL."""
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
            return urlsplit(page["next"]).query
    raise SystemExit("no filtered product list has two pages: seed more products")


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


def fixtures(base: str, shopper: Api, buyer: Api) -> Fixtures:
    """Rows the sqlmap targets start from: real values, so each baseline is a 2xx.

    `shopper` gets a cart line; `buyer` a paid order and a full cart, which a
    declined checkout leaves as it is (the stock is released, the cart stays).
    """
    anonymous = Api(base)
    products, sku = in_stock(anonymous)
    item = add_to_cart(shopper, sku)
    order = buy(buyer, sku)
    add_to_cart(buyer, sku)
    return Fixtures(
        product_query=_product_query(anonymous, products),
        slug=products[0]["slug"],
        sku=sku,
        cart_item_id=item["id"],
        order_id=order["id"],
    )


def prepare(base: str, token: str) -> None:
    """Give a customer what random requests rarely make: orders and a cart.

    Then schemathesis checks the bodies of a non-empty order list and cart
    too: a paid order (no cancelled_at), a cancelled one, a cart line.
    """
    customer = Api(base, token)
    _, sku = in_stock(Api(base))
    buy(customer, sku)
    cancelled = buy(customer, sku)
    customer.call("POST", f"/api/v1/orders/{cancelled['id']}/cancel/", 200)
    add_to_cart(customer, sku)


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
