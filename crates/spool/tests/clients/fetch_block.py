"""Asks a Spark block manager to open one block, the first step of fetching it, as Spark does.

Usage: python fetch_block.py HOST PORT EXECUTOR BLOCK [PROPERTIES], with the runtime's Python.
Without PROPERTIES it tries as a stranger would: with no authentication, then with a guessed
secret. With PROPERTIES (a cluster's `spark-auth.properties`) it authenticates with the
cluster's secret. Prints one line per attempt: `opened: <stream handle>` or `refused: <error>`.
"""

import sys

from py4j.protocol import Py4JJavaError
from pyspark.java_gateway import launch_gateway

# Spark's block managers speak SASL (DIGEST-MD5) when `spark.authenticate` is on and
# `spark.network.crypto.enabled` is off, as on Spool's clusters; the application id in the
# handshake is not checked against the executor's.
APP_ID = "stranger"


def read_secret(path):
    with open(path) as properties:
        for line in properties:
            if line.startswith("spark.authenticate.secret "):
                return line.split(" ", 1)[1].strip()
    raise SystemExit(f"no secret in {path}")


def main():
    host, port, executor, block = (
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        sys.argv[4],
    )
    secrets = [read_secret(sys.argv[5])] if len(sys.argv) > 5 else [None, "guess"]
    gateway = launch_gateway()
    jvm = gateway.jvm
    network = jvm.org.apache.spark.network
    conf = network.util.TransportConf(
        "shuffle", network.util.MapConfigProvider(jvm.java.util.HashMap())
    )
    context = network.TransportContext(conf, network.server.NoOpRpcHandler())
    block_ids = gateway.new_array(jvm.java.lang.String, 1)
    block_ids[0] = block
    request = network.shuffle.protocol.OpenBlocks(APP_ID, executor, block_ids)
    decoder = getattr(network.shuffle.protocol, "BlockTransferMessage$Decoder")
    for secret in secrets:
        bootstraps = jvm.java.util.ArrayList()
        if secret is not None:
            keys = network.sasl.ShuffleSecretManager()
            keys.registerApp(APP_ID, secret)
            bootstraps.add(network.sasl.SaslClientBootstrap(conf, APP_ID, keys))
        factory = context.createClientFactory(bootstraps)
        try:
            client = factory.createClient(host, port)
            answer = client.sendRpcSync(request.toByteBuffer(), 10000)
            print(f"opened: {decoder.fromByteBuffer(answer).toString()}", flush=True)
        except Py4JJavaError as e:
            # The first line: the server's own stack trace follows in the message.
            error = e.java_exception.toString().splitlines()[0]
            print(f"refused: {error}", flush=True)
        finally:
            factory.close()


main()
