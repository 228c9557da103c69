"""Benchmark job: estimate pi with the RDD API, then sum a range with the DataFrame API."""

import random
import time

from pyspark.sql import SparkSession

started = time.time()
spark = SparkSession.builder.appName("spool-bench-pi").getOrCreate()
samples = 200_000


def inside(_: int) -> int:
    x, y = random.random(), random.random()
    return 1 if x * x + y * y < 1.0 else 0


hits = spark.sparkContext.parallelize(range(samples), 2).map(inside).sum()
total = spark.range(1_000_000).selectExpr("sum(id) AS s").collect()[0]["s"]
print(f"pi ~ {4.0 * hits / samples:.3f}; sum = {total}; in-driver {time.time() - started:.2f} s")
spark.stop()
