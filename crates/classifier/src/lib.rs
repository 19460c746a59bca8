//! Account directory, tier resolution, entity extraction and category classification. No I/O.
