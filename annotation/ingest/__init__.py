"""Item ingest: image sanitisation, manifest parsing, archive safety, all-or-nothing import.

Invariants:

- Nothing stored is the client's bytes as uploaded. Every image is decoded and re-encoded
  from its pixels with no EXIF, GPS, XMP, IPTC, MakerNote or comments (the ICC profile is
  kept and the EXIF orientation applied first); texts are NFC-normalised.
- An import stores every row or none, and reports every bad row with its line number.
- Archives are read in memory, never extracted. No archive member, manifest ``file`` value
  or server folder can name anything outside the archive or folder it belongs to.

Modules, each depending only on those listed before it:

- ``images``: sanitising and hashing images and texts (no database).
- ``manifest``: the manifest's columns, CSV/JSONL parsing, ``ImportSource`` and row errors.
- ``stores``: uploads, zip archives and server folders, and their path safety.
- ``rows``: checking each row, and the rows against each other, the project and takedowns.
- ``batches``: the import service (``items_import``) and queued import batches.

This package re-exports what the rest of Chorus uses; tests that replace a module's
constant patch the module that defines it.
"""

from annotation.ingest.batches import (
    ANALYZE_AFTER_ROWS,
    import_batch_create,
    import_batch_execute,
    import_batch_failed,
    import_batch_run,
    import_uploads_sweep,
    items_import,
)
from annotation.ingest.images import (
    ImageRejected,
    SanitizedImage,
    normalize_text,
    sanitize_image,
    sha256_hex,
    text_sha256,
)
from annotation.ingest.manifest import (
    MANIFEST_COLUMNS,
    ImportSource,
    ManifestColumn,
    ManifestRow,
    RowError,
    describe_error,
    manifest_columns,
    parse_csv,
    parse_jsonl,
)
from annotation.ingest.stores import (
    import_folder_resolve,
    read_folder,
    read_upload,
    safe_relative_path,
    upload_kind,
)

__all__ = [
    "ANALYZE_AFTER_ROWS",
    "MANIFEST_COLUMNS",
    "ImageRejected",
    "ImportSource",
    "ManifestColumn",
    "ManifestRow",
    "RowError",
    "SanitizedImage",
    "describe_error",
    "import_batch_create",
    "import_batch_execute",
    "import_batch_failed",
    "import_batch_run",
    "import_uploads_sweep",
    "import_folder_resolve",
    "items_import",
    "manifest_columns",
    "normalize_text",
    "parse_csv",
    "parse_jsonl",
    "read_folder",
    "read_upload",
    "safe_relative_path",
    "sanitize_image",
    "sha256_hex",
    "text_sha256",
    "upload_kind",
]
