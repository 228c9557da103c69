"""Spool's interactive Spark driver: a PySpark REPL served over a local TCP socket.

Started by Spool with `spark-submit driver.py --host H --port N`, it creates the SparkSession,
then listens on H:N (127.0.0.1, or the cluster's address inside an isolated cluster's network
namespace) for newline-delimited JSON requests from the Spool server:

    {"op": "execute", "id": 3, "kind": "pyspark" | "sql", "code": "..."}
    {"op": "result", "id": 3}   (waits for the output of a statement sent earlier, e.g. by
                                 a server that has since restarted)
    {"op": "cancel", "id": 3}
    {"op": "progress", "id": 3}
    {"op": "ping"}
    {"op": "run", "file", "argv", "cwd", "py_files", "files", "conf", "log"}
                                (a pre-warmed driver handed to a batch job: runs the job's entry
                                 as `__main__` as `spark-submit` would, then exits with its
                                 exit code; it answers once the entry has started)

and answers with one JSON line per request (`execute` answers when the statement is done, so
answers may come out of order; each echoes the request's `req` tag). Outputs follow Livy's statement
output shape: `{"status": "ok", "execution_count", "data": {mime: value}}` or
`{"status": "error", "execution_count", "ename", "evalue", "traceback"}`.

Only the Spool server connects; the socket is bound to loopback. If the server goes away the
driver keeps its state and accepts the next connection, so a restarted server can re-adopt it.
"""

import argparse
import ast
import base64
import contextlib
import hmac
import io
import json
import os
import runpy
import socket
import sys
import threading
import time
import traceback

SQL_ROW_LIMIT = 1000
# Outputs kept for a server that reconnects after a restart (as Livy keeps 100 statements).
RETAINED_RESULTS = 100


class Repl:
    """Runs statements in one shared namespace, one at a time, each in its own Spark job group."""

    def __init__(self, spark):
        self.spark = spark
        self.sc = spark.sparkContext
        self.namespace = {
            "__name__": "__main__",
            "spark": spark,
            "sc": self.sc,
            "sqlContext": _sql_context(spark),
        }
        self.execution_count = 0
        self.lock = threading.Lock()
        self.results = {}
        self.done = {}

    def execute(self, statement_id, kind, code):
        self.done.setdefault(statement_id, threading.Event())
        output = self._execute(statement_id, kind, code)
        self.results[statement_id] = output
        self.done[statement_id].set()
        for old in sorted(self.results)[:-RETAINED_RESULTS]:
            self.results.pop(old, None)
            self.done.pop(old, None)
        return output

    def result(self, statement_id):
        """Waits for a statement's output; None if this driver never saw the statement."""
        event = self.done.get(statement_id)
        if event is None:
            return None
        event.wait()
        return self.results.get(statement_id)

    def _execute(self, statement_id, kind, code):
        with self.lock:
            self.execution_count += 1
            self.sc.setJobGroup(_group(statement_id), f"statement {statement_id}", True)
            # The group stays set until the next statement sets its own: clearing it would cost
            # another JVM round trip on every statement.
            try:
                if kind == "sql":
                    return self._sql(code)
                return self._python(code)
            except BaseException as error:  # noqa: BLE001 - every failure becomes an output
                return self._error(error)

    def _ok(self, data):
        return {"status": "ok", "execution_count": self.execution_count, "data": data}

    def _error(self, error, ename=None, evalue=None):
        # Show the user's frames only, not the REPL's own.
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != "<stdin>":
            tb = tb.tb_next
        lines = traceback.format_exception(type(error), error, tb)
        return {
            "status": "error",
            "execution_count": self.execution_count,
            "ename": ename or type(error).__name__,
            "evalue": evalue if evalue is not None else str(error),
            "traceback": lines,
        }

    def _python(self, code):
        if code.lstrip().startswith("%"):
            return self._magic(code.strip())
        try:
            tree = ast.parse(code, mode="exec")
        except SyntaxError as error:
            return self._error(error, "SyntaxError", str(error))
        body = tree.body
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            # Everything but the last statement runs as a module; the last one runs
            # interactively, so that a trailing expression is echoed as in a shell.
            if len(body) > 1:
                module = ast.Module(body=body[:-1], type_ignores=[])
                exec(compile(module, "<stdin>", "exec"), self.namespace)
            if body:
                last = ast.Interactive(body=body[-1:])
                previous_hook = sys.displayhook
                sys.displayhook = _display_into(captured)
                try:
                    exec(compile(last, "<stdin>", "single"), self.namespace)
                finally:
                    sys.displayhook = previous_hook
        return self._ok({"text/plain": captured.getvalue().rstrip()})

    def _magic(self, line):
        name, _, rest = line[1:].partition(" ")
        target = rest.strip()
        if name in ("json", "table"):
            value = eval(target, self.namespace)  # noqa: S307 - the user's own session
            rows = _rows(value)
            if name == "json":
                return self._ok({"application/json": rows, "text/plain": json.dumps(rows)})
            headers = sorted({key for row in rows if isinstance(row, dict) for key in row})
            table = {
                "headers": [{"name": h, "type": _type_name(rows, h)} for h in headers],
                "data": [[row.get(h) for h in headers] for row in rows if isinstance(row, dict)],
            }
            return self._ok({"application/vnd.livy.table.v1+json": table, "text/plain": ""})
        if name == "matplot":
            figure = eval(target, self.namespace)  # noqa: S307 - the user's own session
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
            return self._ok({"image/png": encoded, "text/plain": ""})
        error = ValueError(f"unknown magic %{name}; known: %json, %table, %matplot")
        return self._error(error, "UnknownMagic", str(error))

    def _sql(self, code):
        frame = self.spark.sql(code)
        schema = json.loads(frame.schema.json())
        rows = [list(row) for row in frame.take(SQL_ROW_LIMIT)]
        text = _render_table([f["name"] for f in schema["fields"]], rows)
        return self._ok(
            {
                "application/json": {"schema": schema, "data": _jsonable(rows)},
                "text/plain": text,
            }
        )

    def progress(self, statement_id):
        tracker = self.sc.statusTracker()
        total = done = 0
        for job_id in tracker.getJobIdsForGroup(_group(statement_id)):
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            for stage_id in job.stageIds:
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    total += stage.numTasks
                    done += stage.numCompletedTasks
        return (done / total) if total else 0.0

    def cancel(self, statement_id):
        self.sc.cancelJobGroup(_group(statement_id))


def _group(statement_id):
    return f"spool-statement-{statement_id}"


def _sql_context(spark):
    try:
        from pyspark.sql import SQLContext

        return SQLContext(spark.sparkContext, spark)
    except Exception:  # noqa: BLE001 - removed in newer Spark
        return spark


def _display_into(stream):
    def hook(value):
        if value is not None:
            stream.write(repr(value) + "\n")

    return hook


def _rows(value):
    if hasattr(value, "toJSON") and hasattr(value, "schema"):
        return [json.loads(line) for line in value.toJSON().take(SQL_ROW_LIMIT)]
    if isinstance(value, dict):
        return [value]
    return list(value)


def _type_name(rows, key):
    for row in rows:
        if isinstance(row, dict) and row.get(key) is not None:
            value = row[key]
            return {bool: "BOOLEAN_TYPE", int: "BIGINT_TYPE", float: "DOUBLE_TYPE"}.get(type(value), "STRING_TYPE")
    return "NULL_TYPE"


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _render_table(headers, rows):
    cells = [[str(h) for h in headers]] + [["null" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line]
    for index, row in enumerate(cells):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if index == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def run_main(repl, request):
    """Runs a batch job's entry file in this (warm) driver as `spark-submit` would have run it
    in a fresh one, then ends the process with the entry's exit code. Returns once the entry's
    thread has started; raises if the job cannot be set up (nothing has run then)."""
    entry = request["file"]
    log = open(request["log"], "ab", buffering=0)
    # The entry's output goes to the job's driver log, stdout and stderr together (as
    # PySpark's runner merges them), unbuffered as `spark-submit` runs Python.
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    os.chdir(request["cwd"])
    sys.argv = list(request["argv"])
    # As `python entry.py` would: the entry's folder first on the path.
    sys.path.insert(0, os.path.dirname(entry))
    sc = repl.sc
    for path in request.get("py_files", []):
        sc.addPyFile(path)
    for path in request.get("files", []):
        sc.addFile(path)
    for key, value in request.get("conf", {}).items():
        repl.spark.conf.set(key, value)

    def body():
        code = 0
        try:
            runpy.run_path(entry, run_name="__main__")
        except SystemExit as error:
            code = _exit_code(error)
        except BaseException as error:  # noqa: BLE001 - reported as Python reports it
            tb = error.__traceback__
            # The entry's own frames, as `python entry.py` would print them.
            while tb is not None and tb.tb_frame.f_code.co_filename != entry:
                tb = tb.tb_next
            traceback.print_exception(type(error), error, tb or error.__traceback__)
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        # Never reused: the JVM sees the Python process end with the entry's code, stops the
        # SparkContext and exits with it, as after `spark-submit`.
        os._exit(code)

    threading.Thread(target=body, name="spool-job-main").start()


def _exit_code(error):
    """The process exit code of a `SystemExit`, as the interpreter would choose it."""
    code = error.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def serve(repl, host, port, secret):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(4)
    print(f"spool repl listening on {host}:{port}", flush=True)
    while True:
        connection, _ = listener.accept()
        # Small replies must not wait for Nagle's algorithm.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not handle(repl, connection, secret):
            return


def authenticated(reader, secret):
    """Whether a connection's first line presents the session's secret."""
    try:
        first = json.loads(reader.readline() or "null")
    except ValueError:
        return False
    offered = first.get("secret") if isinstance(first, dict) and first.get("op") == "auth" else None
    return isinstance(offered, str) and hmac.compare_digest(offered.encode(), secret.encode())


def handle(repl, connection, secret):
    """Serves one server connection; returns False when asked to shut down."""
    write_lock = threading.Lock()
    reader = connection.makefile("r", encoding="utf-8")
    # Another OS account's process can reach a loopback port too: only the server, which set
    # the secret, gets an answer.
    if not authenticated(reader, secret):
        connection.close()
        return True
    connection.sendall(b'{"auth": "ok"}\n')

    def reply(message):
        data = (json.dumps(message) + "\n").encode("utf-8")
        with write_lock:
            try:
                connection.sendall(data)
            except OSError:
                pass  # The server went away; it will ask again after reconnecting.

    for line in reader:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        op = request.get("op")
        request_id = request.get("id")
        if op == "execute":
            def run(request=request):
                output = repl.execute(request["id"], request.get("kind", "pyspark"), request["code"])
                reply({"req": request.get("req"), "id": request["id"], "output": output})

            threading.Thread(target=run, daemon=True).start()
        elif op == "result":
            def fetch(request=request):
                output = repl.result(request["id"])
                reply({"req": request.get("req"), "id": request["id"], "output": output})

            threading.Thread(target=fetch, daemon=True).start()
        elif op == "cancel":
            repl.cancel(request_id)
            reply({"req": request.get("req"), "id": request_id, "cancelled": True})
        elif op == "progress":
            reply({"req": request.get("req"), "id": request_id, "progress": repl.progress(request_id)})
        elif op == "run":
            try:
                run_main(repl, request)
                reply({"req": request.get("req"), "started": True})
            except BaseException as error:  # noqa: BLE001 - the server reports it
                reply({"req": request.get("req"), "error": f"{type(error).__name__}: {error}"})
        elif op == "ping":
            reply({"req": request.get("req"), "id": request_id, "pong": True})
        elif op == "shutdown":
            reply({"req": request.get("req"), "id": request_id, "bye": True})
            connection.close()
            return False
    connection.close()
    return True


def wait_for_master(url, timeout=90.0):
    """Waits until a standalone master accepts applications.

    The driver starts while its cluster is still starting. A registration the master receives
    before it is the leader is dropped, and Spark retries it only 20 s later, so the driver asks
    the master's status page first."""
    import urllib.request

    # The master is on a local address: never through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=2) as response:
                if json.load(response).get("status") == "ALIVE":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise SystemExit(f"the Spark master at {url} did not become ALIVE within {timeout:.0f} s")


def warm_up(spark, timeout=120.0):
    """Makes a pre-warmed driver really warm before it answers: its first executor registered
    and a tiny job run on it, so the classes are loaded and the hot paths compiled, and a
    user's first statement waits for neither."""
    sc = spark.sparkContext
    deadline = time.monotonic() + timeout
    # The block managers known to the driver: its own, and one per registered executor.
    while sc._jsc.sc().getExecutorMemoryStatus().size() < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"no executor registered within {timeout:.0f} s")
        time.sleep(0.05)
    spark.range(1000).selectExpr("sum(id)").first()
    # And the executor's Python worker daemon, which a Python function (an RDD `map`, a UDF)
    # would otherwise wait for.
    sc.parallelize(range(2), 1).map(lambda x: x + 1).sum()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--warm-up",
        action="store_true",
        help="wait for an executor and run a tiny job before answering (pre-warmed drivers)",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--wait-for-master",
        metavar="URL",
        help="the master's /json/ status URL; wait until it is ALIVE before connecting",
    )
    args = parser.parse_args()
    # Kept out of the environment statement code sees (and passes on to what it starts).
    secret = os.environ.pop("SPOOL_REPL_SECRET", "")
    if not secret:
        raise SystemExit("SPOOL_REPL_SECRET is not set; only the Spool server starts this driver")
    from pyspark.sql import SparkSession

    if args.wait_for_master:
        wait_for_master(args.wait_for_master)
    spark = SparkSession.builder.getOrCreate()
    if args.warm_up:
        warm_up(spark)
    repl = Repl(spark)
    try:
        serve(repl, args.host, args.port, secret)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
