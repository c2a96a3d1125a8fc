//! Integration tests of the `relay` binary.
