"""sparkmagic's Livy client library against Spool: create a session, run a statement, SQL to a
pandas DataFrame (sparkmagic's %%sql path), delete.

Usage: SPOOL_TOKEN=TOKEN python sparkmagic_session.py URL USER (the token in the environment,
not in `ps`). Exits non-zero on the first failed check.
"""

import os
import sys
import types

from sparkmagic.auth.basic import Basic
from sparkmagic.livyclientlib.command import Command
from sparkmagic.livyclientlib.endpoint import Endpoint
from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
from sparkmagic.livyclientlib.livysession import LivySession
from sparkmagic.livyclientlib.sqlquery import SQLQuery
from sparkmagic.utils.sparklogger import SparkLog  # noqa: F401 - configures sparkmagic logging
from hdijupyterutils.ipythondisplay import IpythonDisplay

url, user = sys.argv[1:3]
token = os.environ["SPOOL_TOKEN"]
auth = Basic(parsed_attributes=types.SimpleNamespace(user=user, password=token, url=url, auth="Basic_Access"))
endpoint = Endpoint(url, auth)
http = LivyReliableHttpClient.from_endpoint(endpoint)
session = LivySession(http, {"kind": "pyspark"}, IpythonDisplay())
session.start()
assert session.status == "idle", session.status

ok, output, mimetype = Command("spark.range(5).count()").execute(session)
assert ok and output == "5", (ok, output, mimetype)

ok, output, _ = Command("spark.createDataFrame([(1, 'a'), (2, 'b')], ['n', 's']).createOrReplaceTempView('t')").execute(session)
assert ok, output
frame = SQLQuery("SELECT n, s FROM t ORDER BY n").execute(session)
assert list(frame["n"]) == [1, 2] and list(frame["s"]) == ["a", "b"], frame

ok, output, _ = Command("raise ValueError('expected')").execute(session)
assert not ok and "expected" in str(output), output

assert session.get_spark_ui_url() is not None
session_id = session.id
session.delete()
print(f"sparkmagic ok (session {session_id})")
