//! Integration tests of the supportd binary.
