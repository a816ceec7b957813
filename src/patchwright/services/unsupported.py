"""Services a repository declares that patchwright cannot run (yet): named, never skipped silently.

Detection (detect.py) starts the kinds in spec.ALIASES; an image-based service of another
well-known kind (MongoDB, RabbitMQ, Kafka, Elasticsearch...) is listed here instead, so the
run warns on screen, writes it to summary.json (`services_unsupported`) and tells the model
that tests needing it cannot connect. Supporting the next kind moves its entry from KINDS to
spec.ALIASES with a start script in servers.py and its Debian package in
sandbox/services/packages.txt (README, "Databases and other services").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The image names (last path component, no tag) of backing services a test suite may need.
KINDS = {
    "mongo": "MongoDB",
    "mongodb": "MongoDB",
    "mongodb-community-server": "MongoDB",
    "rabbitmq": "RabbitMQ",
    "kafka": "Kafka",
    "cp-kafka": "Kafka",
    "redpanda": "Redpanda (Kafka)",
    "zookeeper": "ZooKeeper",
    "cp-zookeeper": "ZooKeeper",
    "elasticsearch": "Elasticsearch",
    "opensearch": "OpenSearch",
    "memcached": "Memcached",
    "cassandra": "Cassandra",
    "scylla": "ScyllaDB",
    "neo4j": "Neo4j",
    "couchdb": "CouchDB",
    "influxdb": "InfluxDB",
    "clickhouse-server": "ClickHouse",
    "clickhouse": "ClickHouse",
    "mssql": "SQL Server",
    "mssql-server": "SQL Server",
    "oracle-free": "Oracle",
    "minio": "MinIO (S3)",
    "localstack": "LocalStack (AWS)",
    "dynamodb-local": "DynamoDB Local",
    "azurite": "Azurite (Azure Storage)",
    "nats": "NATS",
    "etcd": "etcd",
    "consul": "Consul",
    "vault": "Vault",
    "keycloak": "Keycloak",
    "valkey": "Valkey",
    "keydb": "KeyDB",
    "meilisearch": "Meilisearch",
    "typesense": "Typesense",
    "qdrant": "Qdrant",
    "mailhog": "MailHog",
    "mailpit": "Mailpit",
}


@dataclass(frozen=True)
class Unsupported:
    """One declared service patchwright does not start."""

    name: str  # the service's name in the file ("mongo", "queue")
    kind: str  # "MongoDB"
    image: str
    source: str  # the file that declares it

    def describe(self) -> str:
        return f"{self.name} ({self.kind}, image {self.image}, from {self.source})"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "image": self.image, "source": self.source}


def unsupported(name: str, body: dict[str, Any], source: str) -> Unsupported | None:
    """The service `name` of a compose file or workflow, when it is a kind in KINDS."""
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        return None
    last = image.split("@", 1)[0].strip().lower().rsplit("/", 1)[-1]
    kind = KINDS.get(last.split(":", 1)[0])
    if kind is None:
        return None
    return Unsupported(name[:63], kind, image.strip()[:200], source)
