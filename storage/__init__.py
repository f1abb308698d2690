"""carebridge.storage: where ciphertext, metadata and the access log are kept.

* :mod:`.blobs` — write-once blob stores for the opaque age files: a folder
  (default) or S3, behind one interface (``open_blob_store``).
* :mod:`.db` — the metadata database (SQLite or PostgreSQL through SQLAlchemy
  Core): ``db.store.Store`` runs reads on a pool and group-commits writes, each
  with its access-log entry; ``db.migrate`` applies the Alembic migrations.

Every error is a :class:`carebridge.storage.errors.StorageError`; backend
exceptions (OSError, botocore, sqlite3, psycopg) never get out.
"""
