//! The supportd binary: CLI, configuration, wiring and task lifecycle.
