"""CSV in S3 → aggregate → partitioned Parquet in S3, as an EMR on EKS job runs it.

    etl.py s3://<bucket>/in/ s3://<bucket>/out/

The input is CSV with a header: city,product,amount. The output is the total and count
of `amount` per city and product, partitioned by city. `s3://` goes through Hadoop's S3A
with the job's execution role (docs/data.md); nothing in the script is sparkyard's.
"""
import sys

from pyspark.sql import SparkSession, functions as F

source, target = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("s3-etl").getOrCreate()
sales = spark.read.option("header", True).option("inferSchema", True).csv(source)
totals = sales.groupBy("city", "product").agg(
    F.sum("amount").alias("total"), F.count("*").alias("sales")
)
totals.write.mode("overwrite").partitionBy("city").parquet(target)
print(f"s3-etl wrote {totals.count()} groups from {sales.count()} rows to {target}")
spark.stop()
