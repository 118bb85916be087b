"""The sales data's schema and aggregation, shipped to the job with `--py-files`."""
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

# Explicit rather than inferred: Spark reads the input once instead of twice.
SCHEMA = StructType(
    [
        StructField("city", StringType(), False),
        StructField("product", StringType(), False),
        StructField("amount", DoubleType(), False),
    ]
)


def totals(sales, regions):
    """Total and count of `amount` per region, city and product."""
    return (
        sales.join(F.broadcast(regions), "city", "left")
        .fillna({"region": "unknown"})
        .groupBy("region", "city", "product")
        .agg(F.round(F.sum("amount"), 2).alias("total"), F.count("*").alias("sales"))
    )
