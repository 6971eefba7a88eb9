from rest_framework import serializers

MONEY = {"max_digits": 12, "decimal_places": 2}


class CartItemAddInput(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=1000, default=1)


class CartItemUpdateInput(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1, max_value=1000)


class CartItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(**MONEY)
    line_total = serializers.DecimalField(**MONEY)


class CartOutput(serializers.Serializer):
    items = CartItemOutput(many=True)
    subtotal = serializers.DecimalField(**MONEY)


class ShippingAddressInput(serializers.Serializer):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True
    )
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    country = serializers.RegexField(
        r"^[A-Z]{2}$",
        error_messages={
            "invalid": "Use an ISO 3166-1 alpha-2 code in upper case, e.g. DE."
        },
    )


class CheckoutInput(serializers.Serializer):
    shipping_address = ShippingAddressInput()
    payment_token = serializers.CharField(max_length=64)
    coupon = serializers.CharField(max_length=32, required=False, allow_blank=False)


class OrderLineOutput(serializers.Serializer):
    sku = serializers.CharField()
    product_name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(**MONEY)


class ShippingOutput(serializers.Serializer):
    line1 = serializers.CharField(source="ship_line1")
    line2 = serializers.CharField(source="ship_line2")
    city = serializers.CharField(source="ship_city")
    postal_code = serializers.CharField(source="ship_postal_code")
    country = serializers.CharField(source="ship_country")


class OrderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    subtotal = serializers.DecimalField(**MONEY)
    discount = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    shipping_address = ShippingOutput(source="*")
    lines = OrderLineOutput(many=True)


class CheckoutLineOutput(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(**MONEY)


class CheckoutOutput(serializers.Serializer):
    """The schema of orders/services/settle.py:order_body, stored for replays."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    subtotal = serializers.DecimalField(**MONEY)
    discount = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    lines = CheckoutLineOutput(many=True)
    coupon_rejected = serializers.CharField(
        required=False, help_text="Why the coupon did not apply; the order stands."
    )
