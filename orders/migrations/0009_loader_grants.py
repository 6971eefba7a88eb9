from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_payment_outcomes"),
        # The schema's USAGE, which these grants are useless without.
        ("shop", "0004_loader_schema_usage"),
    ]

    # The seed's loader: exactly the tables the orders phase writes.
    operations = [sql_file("orders/sql/grants/loader_v01.sql")]
