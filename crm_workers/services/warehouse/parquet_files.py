"""Record batches of one table written as Parquet files of bounded size, each uploaded through the storage layer.

A file is written to a temporary file on disk, row group by row group, then uploaded (a multipart upload on S3
for big files): memory holds one row group at most, whatever the table's size.
"""

from __future__ import annotations

import tempfile
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per row group (what memory holds of a table at once) and per file.
ROW_GROUP_ROWS = 20_000
FILE_ROWS = 1_000_000
#: Readable by DuckDB, BigQuery, Snowflake and Spark alike.
COMPRESSION = "snappy"
CONTENT_TYPE = "application/vnd.apache.parquet"


class ParquetFiles:
    """`<key_prefix>-<n>.parquet`, n from 0: the same rows always give the same file names (a retried run
    rewrites its files instead of adding to them)."""

    def __init__(
        self,
        storage,
        key_prefix: str,
        schema: pa.Schema,
        *,
        group_rows: int = ROW_GROUP_ROWS,
        file_rows: int = FILE_ROWS,
        uploaded: list[str] | None = None,
    ):
        self.storage, self.key_prefix, self.schema = storage, key_prefix, schema
        self.uploaded = uploaded if uploaded is not None else []  # every key uploaded, shared by a run's tables
        self.group_rows, self.file_rows = group_rows, file_rows
        self.keys: list[str] = []
        self.bytes = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._file: IO[bytes] | None = None
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.group_rows:
            self._write_group()

    def close(self) -> list[str]:
        """Write what is pending and upload the last file; the keys of every file written."""
        self._write_group()
        self._finish_file()
        return self.keys

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
        self._writer = self._file = None

    def _write_group(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            self._file = tempfile.TemporaryFile(prefix="crm-warehouse-")
            self._writer = pq.ParquetWriter(self._file, self.schema, compression=COMPRESSION)
        self._writer.write_table(
            pa.Table.from_batches(self._pending, schema=self.schema),
            row_group_size=max(self.group_rows, self._pending_rows),
        )
        self._file_rows += self._pending_rows
        self._pending, self._pending_rows = [], 0
        if self._file_rows >= self.file_rows:
            self._finish_file()

    def _finish_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._file is not None, "opened with the writer"
        key = f"{self.key_prefix}-{len(self.keys)}.parquet"
        self._file.seek(0)
        self.bytes += self.storage.put_stream(key, self._file, content_type=CONTENT_TYPE)
        self._file.close()
        self.keys.append(key)
        self.uploaded.append(key)
        self._writer, self._file, self._file_rows = None, None, 0
