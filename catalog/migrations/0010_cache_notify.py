from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    """Triggers that tell the catalog cache what changed (NOTIFY catalog_changed)."""

    dependencies = [("catalog", "0009_search_prefix")]

    operations = [
        sql_file("catalog/sql/triggers/cache_notify_v01.sql"),
    ]
