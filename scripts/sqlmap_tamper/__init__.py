"""sqlmap tamper scripts of the attack pass (sqlmap loads them by path)."""
