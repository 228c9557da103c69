"""pylivy (PyPI `livy`) against Spool: create a session, run code, read a DataFrame back, SQL.

Usage: SPOOL_TOKEN=TOKEN python pylivy_session.py URL USER (the token in the environment, not
in `ps`). Exits non-zero on the first failed check.
"""

import os
import sys

from livy import LivySession, SessionKind, SessionState
from requests.auth import HTTPBasicAuth

url, user = sys.argv[1:3]
token = os.environ["SPOOL_TOKEN"]
auth = HTTPBasicAuth(user, token)

with LivySession.create(url, auth=auth, kind=SessionKind.PYSPARK) as session:
    assert session.state == SessionState.IDLE, session.state
    output = session.run("1 + 1")
    assert output.text == "2", output

    session.run(
        "df = spark.createDataFrame([(1, 'one'), (2, 'two'), (3, 'three')], ['n', 'word'])"
    )
    output = session.run("print(df.count())")
    assert output.text == "3", output

    frame = session.read("df")
    assert list(frame["n"]) == [1, 2, 3], frame
    assert list(frame["word"]) == ["one", "two", "three"], frame

    failed = False
    try:
        session.run("raise ValueError('expected failure')")
    except Exception as error:  # pylivy raises SparkRuntimeError
        failed = "expected failure" in str(error)
    assert failed, "an error output must reach the client"
    session_id = session.session_id

# A SQL session: the previous session's cluster is still warm, so this is a warm start.
with LivySession.create(url, auth=auth, kind=SessionKind.SQL) as sql:
    frame = sql.read_sql("SELECT id AS n, CAST(id * 2 AS STRING) AS twice FROM range(3)")
    assert list(frame["n"]) == [0, 1, 2], frame
    assert list(frame["twice"]) == ["0", "2", "4"], frame

print(f"pylivy ok (session {session_id})")
