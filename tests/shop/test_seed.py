"""`manage.py seed`: deterministic demo data, written with COPY as shop_loader.

The command commits in its own transactions and --reset truncates through
the `owner` alias, so every test here is transactional and lists all the
aliases (tests/dbs.py explains why `owner` must be among them).
"""

import hashlib
import io
import re
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

import psycopg
import pytest
from django.contrib.auth import authenticate
from django.contrib.postgres.search import SearchQuery
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connections
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, Sum

from catalog import seeding as catalog_seeding
from catalog.models import (
    Category,
    Product,
    ProductVariant,
    Review,
    StockLevel,
    Warehouse,
)
from catalog.seeding.catalog import DUAL_STOCKED_SHARE, MAX_VARIANTS_PER_PRODUCT
from catalog.seeding.vocabulary import CATEGORY_TREE
from orders import seeding as orders_seeding
from orders.models import (
    Coupon,
    CouponRedemption,
    Order,
    OrderLine,
    Payment,
    StockMovement,
)
from orders.seeding import orders as seeding_orders
from orders.seeding.coupons import COUPONS
from shop.accounts.models import Address, Customer, User
from shop.accounts.seeding import DEMO_LOGINS
from shop.management.commands.seed import Command as SeedCommand
from shop.seeding import Plan, plan_for, seed_phase
from shop.seeding import phases as seeding_phases
from shop.seeding import tables as seeding_tables
from shop.seeding.determinism import BASE_TIME
from tests.catalog.factories import ProductFactory
from tests.dbs import ALL_DATABASES, session_as_staff
from tests.orders.factories import CouponFactory, OrderFactory

seeds_database = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


@pytest.fixture(autouse=True)
def reads_as_staff(request):
    """The checks read every customer's orders and addresses, as staff would."""
    if request.node.get_closest_marker("django_db") is None:
        yield  # a test that never touches the database
        return
    request.getfixturevalue("transactional_db")
    with session_as_staff():
        yield


SMALL = plan_for("small")
MID_SIZE = plan_for(
    "large",
    products=3_000,
    variants=9_500,
    customers=1_000,
    reviews=4_000,
    orders=4_000,
)
SHIPPING = ("ship_line1", "ship_line2", "ship_city", "ship_postal_code")
SHIPPING += ("ship_country",)


def seed(*args, **options):
    """Run the command; return what it printed."""
    out = io.StringIO()
    call_command("seed", *args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def seed_plan(plan: Plan):
    """Run the command with every count of `plan`, through the large path."""
    return seed(
        scale="large",
        products=plan.products,
        variants=plan.variants,
        customers=plan.customers,
        reviews=plan.reviews,
        orders=plan.orders,
    )


def fetch(sql, params=None):
    with connections["default"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def sorted_values(manager, *fields):
    return manager.order_by(*fields).values_list(*fields)


def fingerprint():
    """Hash every value the seed decides: names, SKUs, prices, stock, orders."""
    parts = [
        StockLevel.objects.order_by("variant__sku", "warehouse__code").values_list(
            "variant__product__category__slug",
            "variant__product__slug",
            "variant__product__name",
            "variant__product__description",
            "variant__product__created_at",
            "variant__sku",
            "variant__name",
            "variant__price",
            "warehouse__code",
            "quantity_on_hand",
            "reserved",
            "updated_at",
        ),
        Address.objects.order_by("customer__user__email", "line1").values_list(
            "customer__user__email",
            "customer__user__date_joined",
            "customer__phone",
            "line1",
            "line2",
            "city",
            "postal_code",
            "country",
            "is_default",
        ),
        Review.objects.order_by("customer__user__email", "product__slug").values_list(
            "customer__user__email", "product__slug", "rating", "title", "created_at"
        ),
        # Sorted by every value, not by id: the first seed in a test database
        # does not start its ids at 1 (only --reset restarts them).
        sorted_values(
            Order.objects,
            "created_at",
            "customer__user__email",
            "status",
            "subtotal",
            "discount",
            "total",
            "coupon__code",
            *SHIPPING,
            "updated_at",
            "paid_at",
            "cancelled_at",
        ),
        sorted_values(
            OrderLine.objects,
            "order__created_at",
            "order__customer__user__email",
            "sku",
            "product_name",
            "warehouse__code",
            "unit_price",
            "quantity",
        ),
        sorted_values(
            Payment.objects,
            "order__created_at",
            "order__customer__user__email",
            "created_at",
            "status",
            "amount",
            "gateway_reference",
        ),
        sorted_values(
            Coupon.objects,
            "code",
            "percent_off",
            "valid_from",
            "valid_until",
            "usage_limit",
            "times_used",
            "is_active",
        ),
    ]
    return hashlib.sha256(repr([list(part) for part in parts]).encode()).hexdigest()


def assert_counts_match(plan: Plan):
    dual_stocked = round(plan.variants * DUAL_STOCKED_SHARE)
    second_addresses = round(plan.customers * 0.4)
    assert Product.objects.count() == plan.products
    assert ProductVariant.objects.count() == plan.variants
    assert StockLevel.objects.count() == plan.variants + dual_stocked
    # Two demo logins; the demo customer is a customer too.
    assert User.objects.count() == plan.customers + 2
    assert Customer.objects.count() == plan.customers + 1
    assert Address.objects.count() == plan.customers + 1 + second_addresses
    assert Review.objects.count() == plan.reviews
    assert Order.objects.count() == plan.orders
    assert plan.orders <= OrderLine.objects.count() <= 5 * plan.orders
    cancelled = Order.objects.filter(status="cancelled").count()
    assert Payment.objects.count() == plan.orders + cancelled
    assert Coupon.objects.count() == len(COUPONS)


@seeds_database
def test_seed_small_writes_the_planned_rows_and_prints_the_demo_logins():
    output = seed(scale="small")

    assert_counts_match(SMALL)
    assert 20 <= Category.objects.count() <= 30
    for login in DEMO_LOGINS:
        assert f"{login.email} / {login.password}" in output


@seeds_database
def test_the_category_tree_has_three_levels_and_products_sit_on_leaves():
    seed(scale="small")

    roots = Category.objects.filter(parent=None)
    middles = Category.objects.filter(parent__in=roots)
    leaves = Category.objects.filter(parent__in=middles)
    assert roots.count() + middles.count() + leaves.count() == Category.objects.count()
    assert not Category.objects.filter(parent__in=leaves).exists()
    assert not Product.objects.exclude(category__in=leaves).exists()


@seeds_database
def test_exactly_one_default_warehouse_and_it_is_main():
    seed(scale="small")

    assert 2 <= Warehouse.objects.count() <= 3
    assert list(Warehouse.objects.filter(is_default=True).values_list("code")) == [
        ("MAIN",)
    ]


@seeds_database
def test_stock_makes_in_stock_filtering_meaningful():
    seed(scale="small")

    variants = ProductVariant.objects.annotate(
        rows=Count("stock_levels"),
        in_main=Count("stock_levels", filter=Q(stock_levels__warehouse__code="MAIN")),
        available=Sum(
            F("stock_levels__quantity_on_hand") - F("stock_levels__reserved")
        ),
    )
    assert not variants.exclude(in_main=1).exists()
    assert variants.filter(rows=2).exists()
    assert variants.filter(available=0).exists()
    assert variants.filter(available__gt=0).exists()
    # Sold out in every warehouse, not merely somewhere.
    assert variants.filter(rows=2, available=0).exists()


@seeds_database
def test_seeded_values_have_the_shapes_the_api_promises():
    seed(scale="small")

    skus = ProductVariant.objects.values_list("sku", flat=True)
    assert all(re.fullmatch(r"[A-Z0-9][A-Z0-9-]*", sku) for sku in skus)
    prices = ProductVariant.objects.values_list("price", flat=True)
    assert {price.as_tuple().exponent for price in prices} == {-2}
    assert Product.objects.values("slug").distinct().count() == SMALL.products
    # One default address per customer (the database allows at most one).
    assert not Customer.objects.exclude(addresses__is_default=True).exists()
    ratings = set(Review.objects.values_list("rating", flat=True))
    assert ratings <= {1, 2, 3, 4, 5}
    assert len(ratings) > 1


@seeds_database
def test_full_text_search_finds_seeded_products_by_english_words():
    seed(scale="small")

    lamp = Product.objects.filter(name__icontains="lamp").order_by("pk").first()
    # "lamps" finds "Lamp": the english configuration stems both to "lamp".
    found = Product.objects.filter(search_document=SearchQuery("lamps"))
    assert lamp in found


@seeds_database
def test_the_same_seed_gives_the_same_rows():
    seed(scale="small")
    first = fingerprint()

    seed(scale="small", reset=True)
    assert fingerprint() == first

    seed(scale="small", reset=True, seed=7)
    assert fingerprint() != first


@seeds_database
def test_order_batches_do_not_change_the_rows(monkeypatch):
    seed(scale="small")
    first = fingerprint()

    monkeypatch.setattr(seeding_orders, "ORDERS_PER_BATCH", 7)
    seed(scale="small", reset=True)

    assert fingerprint() == first


@seeds_database
def test_if_empty_leaves_a_seeded_database_alone():
    seed(scale="small")
    before = fingerprint()

    output = seed(scale="small", if_empty=True, seed=7)

    assert "nothing seeded" in output
    assert fingerprint() == before
    assert_counts_match(SMALL)


@seeds_database
def test_if_empty_seeds_an_empty_database():
    seed(scale="small", if_empty=True)

    assert_counts_match(SMALL)


@seeds_database
def test_refuses_a_non_empty_database_without_reset_or_if_empty():
    ProductFactory()

    with pytest.raises(CommandError, match=r"--reset.*--if-empty"):
        seed(scale="small")

    assert Product.objects.count() == 1
    assert not User.objects.exists()


@seeds_database
def test_a_stray_coupon_counts_as_data_and_reset_removes_it():
    CouponFactory(code="WELCOME10")

    with pytest.raises(CommandError, match="orders_coupon"):
        seed(scale="small")

    seed(scale="small", reset=True)
    assert_counts_match(SMALL)


@seeds_database
def test_reset_replaces_whatever_was_there():
    stray = ProductFactory(name="Not seeded")
    seed(scale="small", reset=True)

    assert not Product.objects.filter(pk=stray.pk, name="Not seeded").exists()
    assert_counts_match(SMALL)
    # RESTART IDENTITY: the first seeded product got the first id again, and
    # so did the oldest order.
    assert Product.objects.order_by("pk").first().pk == 1
    assert Order.objects.order_by("created_at").first().pk == 1


@seeds_database
def test_demo_logins_authenticate():
    seed(scale="small")

    staff_login, customer_login = DEMO_LOGINS
    staff = authenticate(email=staff_login.email, password=staff_login.password)
    assert staff is not None
    assert staff.is_staff
    assert staff.is_superuser
    customer = authenticate(
        email=customer_login.email, password=customer_login.password
    )
    assert customer is not None
    assert not customer.is_staff
    assert customer.customer.addresses.get(is_default=True).country == "US"
    # Seeded customers share the demo customer's password (one hash).
    seeded = User.objects.filter(email__endswith="@example.com").first()
    assert authenticate(email=seeded.email, password=customer_login.password)
    assert authenticate(email=staff_login.email, password="wrong") is None


@seeds_database
def test_the_app_keeps_inserting_after_a_seed():
    seed(scale="small")

    # Seeded keys came from the sequences, so the next INSERT does not collide.
    product = ProductFactory()
    order = OrderFactory(customer=Customer.objects.first())
    coupon = CouponFactory()

    assert product.pk > SMALL.products
    assert order.pk > SMALL.orders
    assert coupon.pk > len(COUPONS)


@seeds_database
def test_a_mid_size_plan_takes_the_same_path_as_large(monkeypatch):
    # Several batches of orders, as the large scale writes them.
    monkeypatch.setattr(seeding_orders, "ORDERS_PER_BATCH", 1_500)

    seed_plan(MID_SIZE)

    assert_counts_match(MID_SIZE)
    per_product = Product.objects.annotate(n=Count("variants")).aggregate(
        low=Count("pk", filter=Q(n=1)), high=Count("pk", filter=Q(n=5))
    )
    assert per_product["low"] > 0
    assert per_product["high"] > 0
    assert_order_history_is_realistic(MID_SIZE)


def assert_order_history_is_realistic(plan: Plan):
    """Statuses, line counts and skews in the proportions analytics expects."""
    shares = {
        row["status"]: row["n"] / plan.orders
        for row in Order.objects.values("status").annotate(n=Count("pk"))
    }
    assert set(shares) == {"paid", "cancelled", "failed"}  # none left pending
    assert 0.80 <= shares["paid"] <= 0.90
    assert 0.04 <= shares["cancelled"] <= 0.10
    assert 0.05 <= shares["failed"] <= 0.11
    assert 2.2 <= OrderLine.objects.count() / plan.orders <= 2.8
    # Regulars: the busiest 5% of customers place a far larger share of orders.
    per_customer = sorted(
        Order.objects.values("customer")
        .annotate(n=Count("pk"))
        .values_list("n", flat=True),
        reverse=True,
    )
    assert sum(per_customer[: plan.customers // 20]) >= 0.25 * plan.orders
    assert per_customer[len(per_customer) // 2] <= 3
    # Bestsellers: the top 1% of products sell over a fifth of all units.
    units = sorted(
        OrderLine.objects.values("variant__product")
        .annotate(n=Sum("quantity"))
        .values_list("n", flat=True),
        reverse=True,
    )
    assert sum(units[: plan.products // 100]) >= 0.2 * sum(units)
    assert len(units) < plan.products  # and some products never sold
    # Customers who moved: the snapshot keeps where earlier parcels went.
    assert 0.02 <= shipped_elsewhere_share() <= 0.10
    # The holiday season outsells the summer.
    december = Order.objects.filter(created_at__month=12).count()
    july = Order.objects.filter(created_at__month=7).count()
    assert december > 1.5 * july


@seeds_database
def test_every_order_subtotal_equals_its_lines_total():
    seed(scale="small")

    # orders_order_lines_total() (orders/sql/functions/) is what the stored
    # subtotal must equal; one query checks every order against it.
    [(orders, mismatched, lineless)] = fetch(
        "SELECT count(*),"
        " count(*) FILTER (WHERE subtotal <> orders_order_lines_total(id)),"
        " count(*) FILTER (WHERE NOT EXISTS"
        "  (SELECT 1 FROM orders_order_line AS l WHERE l.order_id = o.id))"
        " FROM orders_order AS o"
    )
    assert orders == SMALL.orders
    assert mismatched == 0
    assert lineless == 0
    assert not Order.objects.exclude(total=F("subtotal") - F("discount")).exists()
    assert not Order.objects.filter(coupon=None).exclude(discount=0).exists()
    cent = Decimal("0.01")
    for order in Order.objects.exclude(coupon=None).select_related("coupon"):
        expected = order.subtotal * order.coupon.percent_off / 100
        assert order.discount == expected.quantize(cent, rounding=ROUND_HALF_UP)
    assert Order.objects.exclude(coupon=None).exclude(discount=0).exists()


@seeds_database
def test_payments_and_timestamps_match_each_orders_status():
    seed(scale="small")

    expected = {
        "paid": ["captured"],
        "failed": ["declined"],
        "cancelled": ["captured", "refunded"],
    }
    rows = fetch(
        "SELECT o.status, array_agg(p.status ORDER BY p.created_at),"
        " bool_and(p.amount = o.total)"
        " FROM orders_order AS o JOIN orders_payment AS p ON p.order_id = o.id"
        " GROUP BY o.id"
    )
    assert len(rows) == SMALL.orders
    for status, payments, amounts_match in rows:
        assert payments == expected[status]
        assert amounts_match
    settled = Order.objects.filter(status__in=["paid", "cancelled"])
    assert not settled.filter(paid_at__lte=F("created_at")).exists()
    assert not Order.objects.filter(status="failed", paid_at__isnull=False).exists()
    assert (
        not Order.objects.exclude(status="cancelled")
        .exclude(cancelled_at=None)
        .exists()
    )
    cancelled = Order.objects.filter(status="cancelled")
    assert not cancelled.exclude(cancelled_at__gt=F("paid_at")).exists()
    assert not cancelled.exclude(updated_at=F("cancelled_at")).exists()
    assert not Order.objects.filter(updated_at__gt=BASE_TIME).exists()
    # The gateway's references are unique, like a real gateway's.
    captured = Payment.objects.exclude(status="refunded")
    references = captured.values_list("gateway_reference", flat=True)
    assert len(set(references)) == captured.count()


@seeds_database
def test_coupons_stay_within_their_limits_and_match_their_orders():
    seed(scale="small")

    assert not Coupon.objects.filter(times_used__gt=F("usage_limit")).exists()
    coupons = Coupon.objects.annotate(redeemed=Count("redemptions"))
    assert not coupons.exclude(times_used=F("redeemed")).exists()
    # Black Friday ran out at every scale.
    assert coupons.filter(
        usage_limit=F("times_used"), code__startswith="BLACK"
    ).exists()
    redemptions = CouponRedemption.objects.select_related("order", "coupon")
    assert redemptions.exists()
    for redemption in redemptions:
        order, coupon = redemption.order, redemption.coupon
        assert order.coupon_id == coupon.pk
        assert order.customer_id == redemption.customer_id
        assert order.status in ("paid", "cancelled")
        assert coupon.valid_from <= order.created_at < coupon.valid_until
    # A settled order with a coupon redeemed it; a failed checkout handed the
    # use back (orders/services/checkout.py) but keeps its discount.
    with_coupon = Order.objects.exclude(coupon=None)
    assert not with_coupon.filter(
        status__in=["paid", "cancelled"], redemption=None
    ).exists()
    assert not with_coupon.filter(status="failed", redemption__isnull=False).exists()


@seeds_database
def test_order_snapshots_match_the_catalogue_when_sold():
    seed(scale="small")

    lines = OrderLine.objects.all()
    assert not lines.exclude(sku=F("variant__sku")).exists()
    assert not lines.exclude(product_name=F("variant__product__name")).exists()
    # Prices changed over two years: most lines sold at today's price, not all.
    repriced = lines.exclude(unit_price=F("variant__price")).count()
    assert 0 < repriced < lines.count() / 2
    repriced_variants = lines.exclude(unit_price=F("variant__price")).values("variant")
    assert lines.filter(
        variant__in=repriced_variants, unit_price=F("variant__price")
    ).exists()
    # Lines come from a warehouse that stocks the variant.
    stocked_there = StockLevel.objects.filter(
        variant=OuterRef("variant"), warehouse=OuterRef("warehouse")
    )
    assert not lines.exclude(Exists(stocked_there)).exists()
    assert not Order.objects.filter(
        Q(ship_line1="") | Q(ship_city="") | Q(ship_postal_code="")
    ).exists()


def shipped_elsewhere_share():
    """Return the share of orders not shipped to their customer's default address."""
    [(share,)] = fetch(
        "SELECT avg((("
        "  o.ship_line1, o.ship_line2, o.ship_city, o.ship_postal_code,"
        "  o.ship_country"
        " ) IS DISTINCT FROM ("
        "  a.line1, a.line2, a.city, a.postal_code, a.country"
        " ))::int)"
        " FROM orders_order AS o"
        " JOIN accounts_address AS a"
        "  ON a.customer_id = o.customer_id AND a.is_default"
    )
    return share


@seeds_database
def test_customers_who_moved_keep_their_old_address_on_past_orders():
    seed(scale="small")

    assert shipped_elsewhere_share() > 0
    defaults = {
        address.customer_id: tuple(getattr(address, field[5:]) for field in SHIPPING)
        for address in Address.objects.filter(is_default=True)
    }
    shipped_to = {}
    for customer_id, *address in Order.objects.order_by("created_at").values_list(
        "customer_id", *SHIPPING
    ):
        shipped_to.setdefault(customer_id, []).append(tuple(address))
    for customer_id, addresses in shipped_to.items():
        # One move at most: an old address first, then today's default.
        moves = sum(1 for a, b in pairwise(addresses) if a != b)
        assert moves <= 1
        assert moves == 0 or addresses[-1] == defaults[customer_id]


@seeds_database
def test_orders_fall_in_the_two_years_after_their_customer_and_product():
    seed(scale="small")

    span = Order.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert span["first"] >= BASE_TIME - timedelta(days=730)
    assert span["last"] < BASE_TIME
    assert span["last"] - span["first"] > timedelta(days=600)
    assert not Order.objects.filter(created_at__lt=F("customer__created_at")).exists()
    assert not OrderLine.objects.filter(
        order__created_at__lt=F("variant__product__created_at")
    ).exists()
    # The demo customer starts with no history, as with reviews.
    demo = DEMO_LOGINS[1].email
    assert not Order.objects.filter(customer__user__email=demo).exists()
    # Ids grow with time, as in a live shop.
    by_time = list(Order.objects.order_by("created_at", "pk").values_list("pk"))
    assert by_time == sorted(by_time)


@seeds_database
def test_the_order_history_leaves_stock_alone_and_its_ledger_balanced():
    seed(scale="small")

    # The catalogue's opening balances, written by the trigger as stock was
    # copied in, are today's stock.
    movements = StockMovement.objects.all()
    initial = movements.filter(reason="initial")
    stocked = StockLevel.objects.exclude(quantity_on_hand=0, reserved=0)
    assert initial.count() == stocked.count()
    assert not initial.exclude(
        on_hand_delta=F("stock_level__quantity_on_hand"),
        reserved_delta=F("stock_level__reserved"),
    ).exists()
    # The past orders' movements: a sale per line of a paid order, at its
    # payment, a cancel per line of a cancelled one, and receipts before
    # them all, balanced so that every stock row's movements still add up
    # to its stock (orders/seeding/stock_history.py).
    paid_lines = OrderLine.objects.filter(order__paid_at__isnull=False)
    cancelled_lines = paid_lines.filter(order__cancelled_at__isnull=False)
    assert movements.filter(reason="sale").count() == paid_lines.count() > 0
    assert movements.filter(reason="cancel").count() == cancelled_lines.count()
    assert (
        not movements.filter(reason="sale")
        .exclude(created_at=F("order__paid_at"))
        .exists()
    )
    first_sale = movements.filter(reason="sale").aggregate(at=Min("created_at"))["at"]
    assert not movements.filter(reason="receipt", created_at__gt=first_sale).exists()
    totals = (
        StockLevel.objects.annotate(ledger=Sum("movements__on_hand_delta"))
        .exclude(ledger=F("quantity_on_hand"))
        .exclude(ledger=None, quantity_on_hand=0)
    )
    assert not totals.exists()
    # Many months of it: what chapter 15's monthly partitions prune.
    months = {
        m.strftime("%Y-%m") for m in movements.values_list("created_at", flat=True)
    }
    assert len(months) > 12


@seeds_database
def test_a_failed_phase_leaves_nothing_half_written(monkeypatch):
    def write_some_reviews_then_fail(writer, **kwargs):
        real_seed_reviews(writer, **kwargs)
        raise IntegrityError("simulated failure after writing reviews")

    real_seed_reviews = catalog_seeding.seed_reviews
    monkeypatch.setattr(catalog_seeding, "seed_reviews", write_some_reviews_then_fail)

    with pytest.raises(CommandError, match=r"reviews phase.*--reset"):
        seed(scale="small")

    assert not Review.objects.exists()
    # Earlier phases committed whole.
    assert Product.objects.count() == SMALL.products
    assert Customer.objects.count() == SMALL.customers + 1


@seeds_database
def test_a_failed_orders_phase_leaves_no_order_history(monkeypatch):
    def write_the_history_then_fail(writer, **kwargs):
        real_seed_orders(writer, **kwargs)
        raise IntegrityError("simulated failure after writing orders")

    real_seed_orders = orders_seeding.seed_orders
    monkeypatch.setattr(orders_seeding, "seed_orders", write_the_history_then_fail)

    with pytest.raises(CommandError, match=r"orders phase.*--reset"):
        seed(scale="small")

    for model in (Coupon, Order, OrderLine, Payment, CouponRedemption):
        assert not model.objects.exists()
    assert Review.objects.count() == SMALL.reviews


@seeds_database
def test_a_table_the_loader_was_not_granted_fails_with_advice():
    with connections["owner"].cursor() as cursor:
        cursor.execute("REVOKE INSERT ON catalog_review FROM shop_loader")
    try:
        with pytest.raises(CommandError, match=r"reviews phase.*grant the table"):
            seed(scale="small")
    finally:
        with connections["owner"].cursor() as cursor:
            cursor.execute("GRANT INSERT ON catalog_review TO shop_loader")
    assert not Review.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"variants": 10},  # fewer variants than products
        {"variants": 5_000},  # more than five per product
        {"reviews": 1_000_000},  # more than customer x product pairs allow
        {"customers": 0, "reviews": 0},  # orders with nobody to place them
        {"orders": -1},
    ],
)
def test_impossible_plans_are_refused_before_touching_the_database(overrides):
    with pytest.raises(CommandError):
        seed(scale="small", **overrides)


def test_each_phase_declares_the_counts_it_writes():
    owners = {
        name: phase.name for phase in seeding_phases.discover() for name in phase.counts
    }

    assert owners == {
        "products": "catalog",
        "variants": "catalog",
        "customers": "accounts",
        "reviews": "reviews",
        "orders": "orders",
    }
    assert SMALL.counts == {
        "products": 200,
        "variants": 600,
        "customers": 50,
        "reviews": 150,
        "orders": 300,
    }
    assert plan_for("large").counts == {
        "products": 100_000,
        "variants": 300_000,
        "customers": 50_000,
        "reviews": 200_000,
        "orders": 200_000,
    }


def test_a_new_phase_brings_its_own_counts_without_a_change_in_shop(monkeypatch):
    seeding_phases.discover()
    monkeypatch.setattr(seeding_phases, "REGISTRY", dict(seeding_phases.REGISTRY))

    def check_widgets(plan):
        if plan.widgets > plan.products:
            raise ValueError("more widgets than products: lower --widgets")

    seed_phase(
        "widgets",
        order=50,
        models=(),
        counts={"widgets": seeding_phases.Count(small=3, large=3_000)},
        check=check_widgets,
        row_count=lambda plan: plan.widgets,
    )(lambda writer, **kwargs: None)

    assert plan_for("small").widgets == 3
    assert plan_for("large", widgets=7).widgets == 7
    with pytest.raises(ValueError, match="lower --widgets"):
        plan_for("small", widgets=201)
    parser = SeedCommand().create_parser("manage.py", "seed")
    assert parser.parse_args(["--widgets", "5"]).widgets == 5
    with pytest.raises(ValueError, match="already declares"):
        seed_phase(
            "more-widgets",
            order=60,
            models=(),
            counts={"widgets": seeding_phases.Count(small=1, large=1)},
            row_count=lambda plan: 0,
        )


def test_a_count_no_phase_declares_is_refused():
    with pytest.raises(ValueError, match="no seed phase declares gadgets"):
        plan_for("small", gadgets=1)
    with pytest.raises(ValueError, match="unknown scale"):
        plan_for("huge")


@seeds_database
def test_reset_fails_fast_while_another_session_uses_the_tables(monkeypatch):
    monkeypatch.setattr(seeding_tables, "RESET_LOCK_TIMEOUT", "200ms")
    # A connection of its own, not one from `default`'s pool: the pool hands
    # out autocommit connections, whose read would hold no lock.
    other = psycopg.connect(**connections["default"].get_connection_params())
    try:
        # An open transaction that has read a table blocks TRUNCATE on it.
        other.execute("SELECT count(*) FROM catalog_product")

        with pytest.raises(CommandError, match="Stop the sessions using them"):
            seed(scale="small", reset=True)
    finally:
        other.rollback()
        other.close()
    assert not Product.objects.exists()


def test_every_leaf_has_enough_options_for_the_largest_product():
    # A product draws its variants' options without repeats; SKUs depend on it.
    leaves = [
        leaf
        for middles in CATEGORY_TREE.values()
        for leaf_list in middles.values()
        for leaf in leaf_list
    ]
    assert all(len(leaf.options) >= MAX_VARIANTS_PER_PRODUCT for leaf in leaves)
    assert len({leaf.sku_prefix for leaf in leaves}) == len(leaves)
