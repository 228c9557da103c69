"""Benchmark baseline for sessions: a PySpark driver against a standalone master, timed by the
caller until it prints `ready`; then the in-process cost of running `1+1` the way a REPL does."""

import ast
import contextlib
import io
import statistics
import sys
import time

from pyspark.sql import SparkSession

spark = SparkSession.builder.master(sys.argv[1]).appName("bench-bare-session").getOrCreate()
print("ready", flush=True)

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
