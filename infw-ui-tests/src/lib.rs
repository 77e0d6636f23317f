//! Holds nothing: the tests are in tests/compile_fail.rs and tests/ui/.
