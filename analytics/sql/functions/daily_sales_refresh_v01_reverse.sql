DROP FUNCTION analytics_daily_sales_refresh();
