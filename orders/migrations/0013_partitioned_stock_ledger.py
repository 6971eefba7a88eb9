from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # The ledger's outbox trigger (0012) moves to the partitioned table.
    dependencies = [("orders", "0012_outbox_triggers")]

    # Django's model is unchanged: the table keeps its columns, constraints
    # and indexes (its primary key gains created_at, which Django does not
    # need to know: it addresses a movement by id, which stays unique).
    operations = [
        sql_file("orders/sql/functions/stock_ledger_partitions_v01.sql"),
        sql_file("orders/sql/partitions/stock_ledger_v01.sql"),
    ]
