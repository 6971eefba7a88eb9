"""Django's PostgreSQL backend with a pool that survives a server restart.

Select it with ENGINE = "shop.db_backend" (shop/settings/base.py: database()).
"""
