"""Benchmark step: reads two estimates and prints their mean."""

import argparse

from pyspark.sql import SparkSession

parser = argparse.ArgumentParser()
parser.add_argument("--left", required=True)
parser.add_argument("--right", required=True)
args = parser.parse_args()

spark = SparkSession.builder.appName("spool-bench-join").getOrCreate()
both = spark.read.csv(args.left, header=True).union(spark.read.csv(args.right, header=True))
print(f"mean pi ~ {both.selectExpr('avg(cast(pi as double)) AS m').collect()[0]['m']:.3f}")
spark.stop()
