from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from orders.models import Cart, CartItem, Coupon, Order, OrderLine
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import StockLevelFactory
from tests.staff_factory import StaffModelFactory


class CartFactory(StaffModelFactory):
    class Meta:
        model = Cart

    customer = factory.SubFactory(CustomerFactory)


class CartItemFactory(StaffModelFactory):
    class Meta:
        model = CartItem

    cart = factory.SubFactory(CartFactory)
    variant = factory.SubFactory("tests.catalog.factories.VariantFactory")
    quantity = 1


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    code = factory.Sequence(lambda n: f"SAVE{n}")
    percent_off = 10
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    usage_limit = None


class OrderFactory(StaffModelFactory):
    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    subtotal = Decimal("10.00")
    total = Decimal("10.00")
    ship_line1 = "1 Test Street"
    ship_city = "Testville"
    ship_postal_code = "12345"
    ship_country = "US"


class OrderLineFactory(StaffModelFactory):
    """A line of one unit from a stock row of its own (pass `stock=` to choose)."""

    class Meta:
        model = OrderLine
        exclude = ("stock",)

    order = factory.SubFactory(OrderFactory)
    stock = factory.SubFactory(StockLevelFactory)
    variant = factory.SelfAttribute("stock.variant")
    warehouse = factory.SelfAttribute("stock.warehouse")
    sku = factory.SelfAttribute("variant.sku")
    product_name = "x"
    unit_price = Decimal("5.00")
    quantity = 1
