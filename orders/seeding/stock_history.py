"""The stock ledger's history for the seeded orders (chapter 15's months).

The seeded orders leave today's stock alone: the catalogue phase wrote it
as it is after every past sale (orders.py). Their movements go straight
into the ledger instead, balanced by a receipt at the start of the history
(sql/stock_history_v01.sql shows the sum), so that the ledger, like a live
shop's, spans every month of the history, each month in its partition.
"""

from orders.models import StockMovement
from shop.seeding.copy import CopyWriter
from shop.sql_files import read_sql


def seed_stock_history(writer: CopyWriter) -> int:
    writer.cursor.execute(read_sql("orders/seeding/sql/stock_history_months_v01.sql"))
    writer.cursor.execute(read_sql("orders/seeding/sql/stock_history_v01.sql"))
    written = writer.cursor.rowcount
    writer.progress.update(written)
    writer.counts[StockMovement._meta.db_table] += written
    return written
