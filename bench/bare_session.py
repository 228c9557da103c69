"""Benchmark baseline for sessions: a PySpark driver against a standalone master, timed by the
caller until it prints `ready` and until it prints `first_result` (the first Spark result,
`FIRST_RESULT` below); then the in-process cost of running `1+1` the way a REPL does."""

import ast
import contextlib
import io
import statistics
import sys
import time

from pyspark.sql import SparkSession

spark = SparkSession.builder.master(sys.argv[1]).appName("bench-bare-session").getOrCreate()
print("ready", flush=True)
# The statement the session rows time as "first result" (the same text as in bench.rs).
FIRST_RESULT = "spark.range(10**6).selectExpr('sum(id)').first()[0]"
eval(FIRST_RESULT, {"spark": spark})
print("first_result", flush=True)

namespace = {"spark": spark}
timings = []
for _ in range(200):
    started = time.perf_counter()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        tree = ast.parse("1+1")
        exec(compile(ast.Interactive(body=tree.body), "<stdin>", "single"), namespace)
    timings.append(time.perf_counter() - started)
print(f"rtt_ms {statistics.median(timings) * 1000:.4f}", flush=True)
spark.stop()
