"""Benchmark step: the pi job's work, then its estimate written to `--out` as one CSV row."""

import argparse
import random

from pyspark.sql import SparkSession

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

random.seed(args.seed)
spark = SparkSession.builder.appName("spool-bench-step").getOrCreate()
samples = 200_000


def inside(_: int) -> int:
    x, y = random.random(), random.random()
    return 1 if x * x + y * y < 1.0 else 0


hits = spark.sparkContext.parallelize(range(samples), 2).map(inside).sum()
spark.createDataFrame([(4.0 * hits / samples,)], ["pi"]).coalesce(1).write.mode(
    "overwrite"
).csv(args.out, header=True)
print(f"pi ~ {4.0 * hits / samples:.3f}")
spark.stop()
