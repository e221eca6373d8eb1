//! Event input (Segment NDJSON) and action output.
