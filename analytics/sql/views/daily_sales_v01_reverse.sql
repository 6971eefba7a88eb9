DROP MATERIALIZED VIEW analytics_daily_sales;
DROP TABLE analytics_refresh;
