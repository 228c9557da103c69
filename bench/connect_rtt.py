"""Spark Connect round trips through Spool's proxy and straight to the session's driver.

Usage: SPOOL_TOKEN=T DIRECT_SECRET=S python connect_rtt.py PROXY_URL DIRECT_URL CALLS
Prints one JSON object: for each call kind and path, the milliseconds of every timed call.
The two paths alternate in rounds so that drift on the machine falls on both alike.
"""

import json
import os
import sys
import time

from pyspark.sql import SparkSession

proxy_url, direct_url, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
sessions = {
    "proxy": SparkSession.builder.remote(
        f"{proxy_url};token={os.environ['SPOOL_TOKEN']}"
    ).create(),
    "direct": SparkSession.builder.remote(
        f"{direct_url};token={os.environ['DIRECT_SECRET']}"
    ).create(),
}
kinds = {
    # What the issue names: a plan analysed, run as a Spark job, and its answer sent back.
    "range_count": lambda spark: spark.range(10).count(),
    # One small unary call (`Config`): nothing but the round trip and the server's answer.
    "conf": lambda spark: spark.conf.get("spark.sql.shuffle.partitions"),
}
for spark in sessions.values():
    for _ in range(20):
        for call in kinds.values():
            call(spark)

times = {kind: {path: [] for path in sessions} for kind in kinds}
rounds = 10
for _ in range(rounds):
    for path, spark in sessions.items():
        for kind, call in kinds.items():
            for _ in range(calls // rounds):
                started = time.perf_counter()
                call(spark)
                times[kind][path].append((time.perf_counter() - started) * 1000)
for spark in sessions.values():
    spark.stop()
print(json.dumps(times))
