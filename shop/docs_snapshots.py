"""The shop's docs snapshots: the ER diagram of every app's tables (chapter 13).

shop/snapshots.py says how `manage.py docs_snapshots` finds this module.
"""

from shop import erd
from shop.snapshots import snapshot

snapshot("er-diagram.md")(erd.render_snippet)
