//! The fuzz targets' logic: the very files of `salvage_conformance::model` that the stable
//! `conformance/tests/fuzz_*.rs` tests run, compiled here without the rest of that crate.

#[path = "../../src/model/fixtures.rs"]
pub mod fixtures;
#[path = "../../src/model/fuzz_entry.rs"]
pub mod fuzz_entry;
