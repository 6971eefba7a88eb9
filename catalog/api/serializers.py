from rest_framework import serializers

from catalog.selectors import PRODUCT_ORDERINGS

MONEY = {"max_digits": 12, "decimal_places": 2}


class CategoryNodeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    depth = serializers.IntegerField()
    children = serializers.ListField(child=serializers.DictField())


class ProductListInput(serializers.Serializer):
    category = serializers.SlugField(required=False, max_length=140)
    # Kept as typed: a space after the last word says the word is finished
    # (catalog.selectors.search_query).
    search = serializers.CharField(
        required=False, max_length=200, trim_whitespace=False
    )
    min_price = serializers.DecimalField(required=False, min_value=0, **MONEY)
    max_price = serializers.DecimalField(required=False, min_value=0, **MONEY)
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)
    ordering = serializers.ChoiceField(
        choices=sorted(PRODUCT_ORDERINGS),
        required=False,
        help_text="Default: `relevance` (best matches first) with `search`, "
        "else `newest`. `relevance` needs `search`.",
    )

    def validate(self, attrs):
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError("min_price must not exceed max_price.")
        if attrs.get("ordering") == "relevance" and not attrs.get("search"):
            raise serializers.ValidationError(
                "ordering=relevance ranks the matches of a search: add search=..."
            )
        return attrs


class ProductListOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField(source="category_slug")
    price = serializers.DecimalField(source="min_price", **MONEY)
    available = serializers.IntegerField()
    in_stock = serializers.SerializerMethodField()

    def get_in_stock(self, product) -> bool:
        return product.available > 0


class VariantOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(**MONEY)
    available = serializers.IntegerField()


class CategoryRefOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class ProductDetailOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    category = CategoryRefOutput()
    price = serializers.DecimalField(source="min_price", **MONEY)
    available = serializers.IntegerField()
    variants = VariantOutput(many=True, source="active_variants")


class StaffVariantOutput(VariantOutput):
    is_active = serializers.BooleanField()


class StaffProductDetailOutput(ProductDetailOutput):
    """The detail as staff see it after a change: inactive parts included.

    `price` (the lowest active price) is null while no variant is active.
    """

    is_active = serializers.BooleanField()
    price = serializers.DecimalField(source="min_price", allow_null=True, **MONEY)
    variants = StaffVariantOutput(many=True, source="all_variants")


class ProductPatchInput(serializers.Serializer):
    """The fields to change; at least one. The slug (the URL) stays."""

    name = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=20_000
    )
    category = serializers.SlugField(required=False, max_length=140)
    is_active = serializers.BooleanField(required=False)


class VariantPatchInput(serializers.Serializer):
    """The fields to change; at least one."""

    price = serializers.DecimalField(required=False, min_value=0, **MONEY)
    is_active = serializers.BooleanField(required=False)


class VariantInput(serializers.Serializer):
    sku = serializers.RegexField(
        r"^[A-Z0-9][A-Z0-9-]*$",
        max_length=64,
        error_messages={
            "invalid": "Use upper-case letters, digits and dashes, e.g. LAMP-OAK-01."
        },
    )
    name = serializers.CharField(
        required=False, default="", max_length=120, allow_blank=True
    )
    price = serializers.DecimalField(min_value=0, **MONEY)
    stock = serializers.IntegerField(min_value=0, max_value=2_000_000_000)


class ProductCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    category = serializers.SlugField(max_length=140)
    description = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=20_000
    )
    variants = VariantInput(many=True, allow_empty=False, max_length=100)


class StockQueryInput(serializers.Serializer):
    warehouse = serializers.RegexField(r"^[A-Z0-9-]+$", required=False, max_length=16)


class StockPatchInput(serializers.Serializer):
    quantity_on_hand = serializers.IntegerField(min_value=0, max_value=2_000_000_000)
    warehouse = serializers.CharField(required=False, max_length=16)


class WarehouseStockOutput(serializers.Serializer):
    warehouse = serializers.CharField(source="warehouse.code")
    quantity_on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()


class StockOutput(serializers.Serializer):
    sku = serializers.CharField()
    warehouse = serializers.CharField(allow_null=True)
    quantity_on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    warehouses = WarehouseStockOutput(many=True)


class CacheKindStatsOutput(serializers.Serializer):
    lookups = serializers.IntegerField()
    hits = serializers.IntegerField(help_text="Lookups that found a valid entry.")
    misses = serializers.IntegerField()
    fills = serializers.IntegerField(
        help_text="Entries computed from the database: at most one per miss, "
        "fewer when requests that missed together waited for one fill."
    )


class CacheKindsOutput(serializers.Serializer):
    categories = CacheKindStatsOutput()
    list = CacheKindStatsOutput()
    detail = CacheKindStatsOutput()


class CacheStatsOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "down", "disabled"])
    kinds = CacheKindsOutput(allow_null=True)
