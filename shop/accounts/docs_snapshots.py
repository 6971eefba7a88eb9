"""The accounts' docs snapshots: the DDL of their first migrations (chapter 04).

shop/snapshots.py says how `manage.py docs_snapshots` finds this module.
"""

from shop.snapshots import show_migrations

show_migrations("accounts", "0001", "0002")
