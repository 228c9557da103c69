"""pylivy with a session's `pyFiles`, `jars`, `files` and `archives` (Livy's session fields).

Usage: SPOOL_TOKEN=TOKEN python pylivy_files.py URL USER LOCAL_DIR OUTSIDE_FILE: the helper
module is in the default datastore at `libs/spool_helper.py`; `marker.jar`, `words.txt` and
`deps.zip` and `local_batch.py` are in LOCAL_DIR, which the server allows; OUTSIDE_FILE is not under it.
"""

import os
import sys

import requests
from livy import LivySession, SessionKind
from requests.auth import HTTPBasicAuth

url, user, local_dir, outside = sys.argv[1:5]
auth = HTTPBasicAuth(user, os.environ["SPOOL_TOKEN"])

# A local file outside the allowed folders is refused, and nothing is created.
before = requests.get(f"{url}/sessions", auth=auth).json()["total"]
refused = requests.post(
    f"{url}/sessions",
    auth=auth,
    json={"kind": "pyspark", "files": [f"file://{outside}"]},
)
assert refused.status_code == 400, (refused.status_code, refused.text)
assert "cannot be added to user sessions" in refused.text, refused.text
assert requests.get(f"{url}/sessions", auth=auth).json()["total"] == before

with LivySession.create(
    url,
    auth=auth,
    kind=SessionKind.PYSPARK,
    py_files=["libs/spool_helper.py"],
    jars=[f"file://{local_dir}/marker.jar"],
    files=[f"{local_dir}/words.txt"],
    archives=[f"{local_dir}/deps.zip#deps"],
) as session:
    # pyFiles: importable in the driver and in executors.
    assert session.run("import spool_helper; print(spool_helper.shout('hi'))").text == "HI!"
    out = session.run(
        "print(sc.parallelize([1]).map(lambda _: __import__('spool_helper').shout('ex')).first())"
    )
    assert out.text == "EX!", out
    # jars: on the driver's class path.
    out = session.run("print(spark._jvm.Marker.hello())")
    assert out.text == "marker from a jar", out
    # files: reachable through SparkFiles on executors.
    out = session.run(
        "from pyspark import SparkFiles\n"
        "print(sc.parallelize([1]).map(lambda _: open(SparkFiles.get('words.txt')).read().split().count('spark')).first())"
    )
    assert out.text == "2", out
    # archives: unpacked under their alias in executors' working folders.
    out = session.run(
        "print(sc.parallelize([1]).map(lambda _: open('deps/inside.txt').read().strip()).first())"
    )
    assert out.text == "from the archive", out
    # Livy's view echoes the lists as given.
    view = requests.get(f"{url}/sessions/{session.session_id}", auth=auth).json()
    assert view["pyFiles"] == ["libs/spool_helper.py"], view
    assert view["archives"] == [f"{local_dir}/deps.zip#deps"], view

# A batch names its main file and a py file by local paths under the allowed folder too.
import time

batch = requests.post(
    f"{url}/batches",
    auth=auth,
    json={"file": f"{local_dir}/local_batch.py", "pyFiles": ["libs/spool_helper.py"]},
)
assert batch.status_code == 201, batch.text
batch_id = batch.json()["id"]
for _ in range(600):
    state = requests.get(f"{url}/batches/{batch_id}/state", auth=auth).json()["state"]
    if state in ("success", "dead", "killed", "error"):
        break
    time.sleep(0.5)
log = requests.get(f"{url}/batches/{batch_id}/log?from=0&size=-1", auth=auth).json()["log"]
assert state == "success", (state, log)
assert any("BATCH! 5" in line for line in log), log

print("pylivy files ok")
