"""The embedded single-node Apache Kafka broker (KRaft, loopback only) under `.local/kafka/`."""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from infra.jvm_deps import kafka_classpath
from infra.procs import ServiceError, pid_alive, port_open, read_pid, require_free_port
from infra.settings import Settings

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
"""


def kafka_home(settings: Settings) -> Path:
    return Path(settings.local.home) / "kafka"


def _server_properties(settings: Settings, home: Path) -> str:
    port, cport = settings.local.kafka_port, settings.local.kafka_controller_port
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{cport}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={home / 'data'}",
        f"num.partitions={settings.topic_partitions}",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "message.max.bytes=2097152",
        "num.network.threads=2",
        "num.io.threads=4",
        # keep records regardless of their (possibly old) timestamps: bronze is the archive,
        # and replayed or backdated traffic must not be deleted under a running query
        "log.retention.ms=-1",
        "",
    ])


def _java_cmd(settings: Settings, home: Path, main: str, *args: str) -> list[str]:
    heap = settings.local.kafka_heap
    return ["java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={home / 'logs'}",
            "-cp", kafka_classpath(), main, *args]


def _format_storage(settings: Settings, home: Path) -> None:
    if (home / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    cmd = _java_cmd(settings, home, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                    "-c", str(home / "server.properties"), "--ignore-formatted")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServiceError(f"formatting Kafka storage failed ({result.stderr.strip()[-200:]}): "
                           f"remove {home / 'data'} and retry `fleetlake services up`")


def start_kafka(settings: Settings, timeout_s: float = 90.0) -> str:
    """Start the broker unless it runs; return its bootstrap address once it answers."""
    home = kafka_home(settings)
    port = settings.local.kafka_port
    bootstrap = f"127.0.0.1:{port}"
    pid = read_pid(home / "kafka.pid")
    if pid and pid_alive(pid):
        _wait_ready(bootstrap, home, pid, timeout_s)
        return bootstrap
    require_free_port(port, "Kafka", "set kafka_port under [local] in fleetlake.toml")
    require_free_port(settings.local.kafka_controller_port, "the Kafka controller",
                      "set kafka_controller_port under [local] in fleetlake.toml")
    for sub in ("data", "logs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "server.properties").write_text(_server_properties(settings, home))
    (home / "log4j2.properties").write_text(LOG4J2.format(log=home / "logs" / "server.log"))
    _format_storage(settings, home)
    with open(home / "logs" / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            _java_cmd(settings, home, "kafka.Kafka", str(home / "server.properties")),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    (home / "kafka.pid").write_text(str(proc.pid))
    _wait_ready(bootstrap, home, proc.pid, timeout_s)
    return bootstrap


def _wait_ready(bootstrap: str, home: Path, pid: int, timeout_s: float) -> None:
    from ingestion.admin import KafkaUnavailableError, admin_client

    deadline = time.monotonic() + timeout_s
    host, port = bootstrap.split(":")
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise ServiceError(f"Kafka exited during start-up: see {home / 'logs'} "
                               "(server.log, stdout.log)")
        if port_open(host, int(port)):
            try:
                client = admin_client(bootstrap, timeout_s=5)
                client.list_topics()
                client.close()
                return
            except (KafkaUnavailableError, Exception):  # noqa: BLE001 - still starting
                pass
        time.sleep(0.5)
    raise ServiceError(f"Kafka did not answer on {bootstrap} within {timeout_s:.0f}s: "
                       f"see {home / 'logs' / 'server.log'}")


def stop_kafka(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop the broker if it runs; return True if one was stopped."""
    home = kafka_home(settings)
    pid = read_pid(home / "kafka.pid")
    if not pid or not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    (home / "kafka.pid").unlink(missing_ok=True)
    return True


def kafka_running(settings: Settings) -> bool:
    pid = read_pid(kafka_home(settings) / "kafka.pid")
    return bool(pid and pid_alive(pid) and port_open("127.0.0.1", settings.local.kafka_port))
