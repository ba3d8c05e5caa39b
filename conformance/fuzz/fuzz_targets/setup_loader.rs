//! `cargo fuzz run setup_loader`: see `salvage_fuzz::fuzz_entry::setup_loader`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    salvage_fuzz::fuzz_entry::setup_loader(data);
});
