"""Reads the Parquet etl.py wrote and prints its row count: `count.py s3://<bucket>/out/`."""
import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("s3-count").getOrCreate()
groups = spark.read.parquet(sys.argv[1])
print(f"s3-count groups={groups.count()} sales={groups.agg({'sales': 'sum'}).first()[0]}")
spark.stop()
