from django.db import migrations, models

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    """catalog_product.min_price, kept by triggers on the variants.

    The triggers' file also fills the column for the products that exist.
    The loader's COPY of variants fires them, so it gets the column too.
    """

    dependencies = [("catalog", "0006_loader_grants")]

    operations = [
        migrations.AddField(
            model_name="product",
            name="min_price",
            field=models.DecimalField(
                blank=True, decimal_places=2, editable=False, max_digits=12, null=True
            ),
        ),
        sql_file("catalog/sql/triggers/product_min_price_v01.sql"),
        sql_file("catalog/sql/grants/loader_v02.sql"),
    ]
