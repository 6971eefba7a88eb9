REVOKE ALL ON orders_payment FROM shop_auditor;
REVOKE ALL ON accounts_customer FROM shop_auditor;
