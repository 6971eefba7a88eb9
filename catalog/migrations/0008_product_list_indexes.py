from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    """The product list's indexes, built without blocking writes.

    CREATE INDEX CONCURRENTLY cannot run inside a transaction block, hence
    atomic = False: on a large catalogue the builds take a while, and a
    plain CREATE INDEX would hold off every product write until they end.
    """

    atomic = False

    dependencies = [("catalog", "0007_product_min_price")]

    operations = [
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(
                condition=models.Q(("is_active", True), ("min_price__isnull", False)),
                fields=["min_price", "id"],
                name="catalog_product_price_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(
                condition=models.Q(("is_active", True), ("min_price__isnull", False)),
                fields=["category", "min_price", "id"],
                name="catalog_product_cat_price_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(
                condition=models.Q(("is_active", True), ("min_price__isnull", False)),
                fields=["name", "id"],
                name="catalog_product_name_idx",
            ),
        ),
    ]
