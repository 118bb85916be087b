"""CSV in S3 → aggregate → partitioned Parquet in S3, as an EMR on EKS job runs it.

    etl.py s3://<bucket>/sales/in/ s3://<bucket>/sales/out/
    (with --py-files s3://<bucket>/code/sales.py --files s3://<bucket>/code/regions.csv)

The input is CSV with a header: city,product,amount. The output is the total and count of
`amount` per region, city and product, partitioned by city. `s3://` goes through Hadoop's
S3A with the job's execution role (docs/data.md); nothing here is specific to sparkyard.
"""
import csv
import sys

from pyspark import SparkFiles
from pyspark.sql import SparkSession

import sales  # from --py-files

source, target = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("s3-etl").getOrCreate()

# --files puts the lookup table in the driver's working files.
with open(SparkFiles.get("regions.csv"), newline="") as f:
    regions = spark.createDataFrame(list(csv.DictReader(f)))

rows = spark.read.option("header", True).schema(sales.SCHEMA).csv(source)
totals = sales.totals(rows, regions).cache()
totals.write.mode("overwrite").partitionBy("city").parquet(target)
summary = totals.agg({"sales": "sum"}).first()[0]
print(f"s3-etl wrote {totals.count()} groups from {summary} rows to {target}")
spark.stop()
