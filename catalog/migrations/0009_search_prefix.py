from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    """Search as you type (its plans rely on shop 0005's random_page_cost)."""

    dependencies = [
        ("catalog", "0008_product_list_indexes"),
        ("shop", "0005_random_page_cost"),
    ]

    operations = [
        sql_file("catalog/sql/functions/search_prefix_v01.sql"),
    ]
