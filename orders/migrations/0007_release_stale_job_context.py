from django.db import migrations

from shop.sql_files import read_sql

PROCEDURES = "orders/sql/procedures"


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_audit_and_row_level_security")]

    operations = [
        # Replaced, not altered: a procedure's body is one string. v02 opens
        # every batch in the job context row-level security requires.
        migrations.RunSQL(
            sql=[
                read_sql(f"{PROCEDURES}/release_stale_reservations_v01_reverse.sql"),
                read_sql(f"{PROCEDURES}/release_stale_reservations_v02.sql"),
            ],
            reverse_sql=[
                read_sql(f"{PROCEDURES}/release_stale_reservations_v02_reverse.sql"),
                read_sql(f"{PROCEDURES}/release_stale_reservations_v01.sql"),
            ],
        ),
    ]
