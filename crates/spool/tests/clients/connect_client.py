"""The thin Spark Connect client (PyPI `pyspark-client`: no JVM, no Spark) against Spool.

Usage: SPOOL_TOKEN=TOKEN python connect_client.py URL run|refused
  URL      the session's `connect_url` (`sc://localhost:PORT/;x-spool-session=ID`)
  run      runs DataFrame code and SQL through the endpoint; prints `connect ok`
  refused  expects the first call to fail; prints `refused: <the client's error>`
The token goes in the environment, not on the command line (`ps` shows that).
"""

import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

url, mode = sys.argv[1:3]
# PySpark sends `token` only over TLS unless the host is `localhost`; elsewhere Spool takes it
# as `x-spool-token` (a header of that name).
param = "token" if url.startswith("sc://localhost:") else "x-spool-token"
remote = f"{url};{param}={os.environ['SPOOL_TOKEN']}"

if mode == "refused":
    try:
        spark = SparkSession.builder.remote(remote).getOrCreate()
        spark.range(1).count()
    except Exception as error:  # SparkConnectGrpcException and friends
        print("refused:", " ".join(str(error).split()))
        sys.exit(0)
    sys.exit("the call was not refused")

spark = SparkSession.builder.remote(remote).getOrCreate()
assert spark.range(10).count() == 10

df = spark.createDataFrame([(1, "a"), (2, "b"), (3, "a")], ["n", "key"])
rows = df.groupBy("key").agg(F.sum("n").alias("total")).orderBy("key").collect()
assert [(r.key, r.total) for r in rows] == [("a", 4), ("b", 2)], rows

df.createOrReplaceTempView("numbers")
assert spark.sql("SELECT max(n) AS m FROM numbers").first().m == 3

# A big answer comes back in several Arrow batches through the proxy's stream.
assert spark.range(10**6).selectExpr("sum(id) AS s").first().s == 499999500000
assert len(spark.range(200000).toPandas()) == 200000

# Errors of the user's code reach the client as Spark's own.
try:
    spark.sql("SELECT * FROM no_such_table").collect()
    sys.exit("an unknown table must fail")
except Exception as error:
    assert "no_such_table" in str(error), error

print("version", spark.version)
spark.stop()
print("connect ok")
