from django.db import migrations, models

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    """catalog_product.in_stock, kept by triggers on the stock and the variants.

    The triggers' file also fills the column for the products that exist.
    The loader's COPY of stock rows fires them, so it gets the column too.
    """

    dependencies = [("catalog", "0010_cache_notify")]

    operations = [
        migrations.AddField(
            model_name="product",
            name="in_stock",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        sql_file("catalog/sql/triggers/product_in_stock_v01.sql"),
        sql_file("catalog/sql/grants/loader_v03.sql"),
    ]
