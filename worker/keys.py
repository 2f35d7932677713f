"""Names of every Redis key the runtime writes, in one place."""

EVENTS_STREAM = "paymenter:events"
DEAD_LETTER_INDEX = "paymenter:dead-letters"
DELAYED_SET = "paymenter:delayed"


def ledger(key: str) -> str:
    return f"paymenter:ledger:{{{key}}}"


def lease(key: str) -> str:
    return f"paymenter:lease:{{{key}}}"


def checkpoint(key: str) -> str:
    return f"paymenter:checkpoint:{{{key}}}"


def deliveries(task_id: str, retries: int) -> str:
    return f"paymenter:deliveries:{task_id}:{retries}"


def errors(task_id: str) -> str:
    return f"paymenter:errors:{task_id}"


def polls(task_id: str) -> str:
    return f"paymenter:polls:{task_id}"


def dead_letter(dead_id: str) -> str:
    return f"paymenter:dead-letter:{dead_id}"


def service_create(extension: str, connection: str, service_id: str) -> str:
    return f"paymenter:service-create:{extension}:{connection}:{service_id}"


def task_meta(task_id: str) -> str:
    return f"celery-task-meta-{task_id}"


def transaction(source: str, connection: str, transaction_id: str) -> str:
    return f"paymenter:txn:{source}:{connection}:{transaction_id}"


def state(source: str, connection: str, name: str) -> str:
    return f"paymenter:state:{source}:{connection}:{name}"


def mutex(source: str, connection: str, name: str) -> str:
    return f"paymenter:mutex:{source}:{connection}:{name}"


def bucket(connection: str) -> str:
    return f"paymenter:bucket:{connection}"


def slots(connection: str) -> str:
    return f"paymenter:slots:{connection}"
