from decimal import Decimal

import factory

from catalog.models import Category, Product, ProductVariant, StockLevel, Warehouse


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    description = "A sturdy thing."


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductVariant

    product = factory.SubFactory(ProductFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    price = Decimal("19.99")


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse
        django_get_or_create = ("code",)

    code = "MAIN"
    name = "Main warehouse"
    is_default = True


class StockLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockLevel

    variant = factory.SubFactory(VariantFactory)
    warehouse = factory.SubFactory(WarehouseFactory)
    quantity_on_hand = 10
    reserved = 0
