"""The training run of a runtime's class archive: the work of a typical PySpark job, in local
mode, so that the classes it loads are written to the archive as the JVM exits.

Usage: spark-submit train.py SCRATCH_DIR
"""

import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

scratch = sys.argv[1]
spark = SparkSession.builder.appName("spool-class-archive").getOrCreate()
sc = spark.sparkContext

# RDDs and Python workers.
sc.parallelize(range(1000), 2).map(lambda x: x * x).filter(lambda x: x % 3).sum()
sc.parallelize([(i % 7, float(i)) for i in range(100)], 2).reduceByKey(lambda a, b: a + b).collect()

# DataFrames: CSV, Parquet, JSON and text in and out, aggregations, joins, SQL.
people = spark.createDataFrame(
    [(i, f"name{i}", i * 0.5) for i in range(100)], ["id", "name", "score"]
)
csv = os.path.join(scratch, "csv")
people.write.mode("overwrite").csv(csv, header=True)
back = spark.read.csv(csv, header=True, inferSchema=True)
back.groupBy((F.col("id") % 5).alias("k")).agg(F.avg("score"), F.count("*")).orderBy("k").collect()
parquet = os.path.join(scratch, "parquet")
back.write.mode("overwrite").parquet(parquet)
spark.read.parquet(parquet).createOrReplaceTempView("people")
spark.sql("SELECT name, score FROM people WHERE id > 10 ORDER BY score DESC LIMIT 5").collect()
people.join(back, "id").select("id").distinct().count()
people.write.mode("overwrite").json(os.path.join(scratch, "json"))
spark.read.json(os.path.join(scratch, "json")).count()
spark.read.text(csv).count()
spark.stop()
