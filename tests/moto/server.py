"""moto_server, with two costs that grow with the amount of state taken out.

Answers and state are moto 5.2.5's own; only how long they take changes. Measured on the
2-core test machine, the two below made a run with a thousand requests spend its time in
moto's bookkeeping, so that nearly every call of the code under test timed out.

1. DynamoDB TransactWriteItems backs up every table it touches with copy.deepcopy, once
   per item of the transaction, so each call costs in proportion to the table's size: 30 ms
   per 3-item transaction on an empty table, 440 ms at 1,000 items, 820 ms at 2,000. Here
   the items the transaction names are saved before it runs and put back if it is
   cancelled: the same outcome for the caller, at the cost of the items it touches.

2. SQS reads its clock through datetime arithmetic (about 10 us a read) and tests every
   message's visibility and delay with it; ReceiveMessage recomputes all the queue's
   attributes, message counts included, for each message it returns, only to read the
   retention period: 1.4 s per ReceiveMessage with 1,000 messages queued. Here the clock is
   time.time() (the same POSIX time) and the retention check reads the period directly.

Started by tests/src/moto.rs (`Moto::start`) with moto_server's own arguments.
"""

import copy
import sys
import time

import moto.dynamodb.models as models
import moto.sqs.models as sqs_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.sqs.models import SQSBackend


class _TablesAreNotCopied:
    """The `copy` module as moto.dynamodb.models sees it while a transaction runs: a
    table "copy" is the table itself (its items are saved one by one instead)."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _saved_items(backend, transact_items):
    """(table name, key, attributes or None) of each item the transaction names."""
    saved = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table_name = op["TableName"]
        table = backend.get_table(table_name)
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        current = backend.get_item(table_name, key)
        attributes = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
        saved.append((table_name, key, attributes))
    return saved


def transact_write_items(self, transact_items):
    try:
        saved = _saved_items(self, transact_items)
    except Exception:
        # A request moto will refuse anyway (unknown table, malformed key...): its own way.
        return _moto_transact_write_items(self, transact_items)
    models.copy = _TablesAreNotCopied()
    try:
        return _moto_transact_write_items(self, transact_items)
    except Exception:
        # Last saved first: an item named twice ends as it was before the transaction.
        for table_name, key, attributes in reversed(saved):
            if attributes is not None:
                self.put_item(table_name, attributes)
            elif self.get_item(table_name, key) is not None:
                self.delete_item(table_name, key)
        raise
    finally:
        models.copy = copy


DynamoDBBackend.transact_write_items = transact_write_items


_moto_unix_time = sqs_models.unix_time
_moto_unix_time_millis = sqs_models.unix_time_millis


def unix_time(dt=None):
    return time.time() if dt is None else _moto_unix_time(dt)


def unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _moto_unix_time_millis(dt)


def is_message_valid_based_on_retention_period(self, queue_name, message):
    retain_until = self.get_queue(queue_name).message_retention_period + message.sent_timestamp / 1000
    return retain_until > time.time()


sqs_models.unix_time = unix_time
sqs_models.unix_time_millis = unix_time_millis
SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period

if __name__ == "__main__":
    from moto.server import main

    sys.argv[0] = "moto_server"
    sys.exit(main())
