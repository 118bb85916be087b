-- Reads the Parquet that examples/s3-etl wrote, prints the totals per region and writes
-- them back to S3 as Parquet. Run with a sparkSqlJobDriver (sales-by-region-job.json).
CREATE TEMPORARY VIEW sales_totals
USING parquet
OPTIONS (path 's3://sparkyard-examples/sales/out/');

CREATE TEMPORARY VIEW by_region AS
SELECT region, count(*) AS `groups`, sum(sales) AS sales, round(sum(total), 2) AS total
FROM sales_totals
GROUP BY region;

SELECT 'sales-by-region', region, `groups`, sales, total FROM by_region ORDER BY region;

INSERT OVERWRITE DIRECTORY 's3://sparkyard-examples/sales/by-region/'
USING parquet
SELECT * FROM by_region;
