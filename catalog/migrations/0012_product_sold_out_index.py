from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    """The sold-out products' index, built without blocking writes (see 0008)."""

    atomic = False

    dependencies = [("catalog", "0011_product_in_stock")]

    operations = [
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(
                condition=models.Q(
                    ("is_active", True),
                    ("min_price__isnull", False),
                    ("in_stock", False),
                ),
                fields=["created_at", "id"],
                name="catalog_product_sold_out_idx",
            ),
        ),
    ]
