//! `cargo fuzz run webhook`: see `salvage_fuzz::fuzz_entry::webhook`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    salvage_fuzz::fuzz_entry::webhook(data);
});
