from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [("shop", "0006_outbox")]

    operations = [sql_file("shop/sql/functions/outbox_append_search_path_v01.sql")]
