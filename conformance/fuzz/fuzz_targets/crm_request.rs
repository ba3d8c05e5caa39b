//! `cargo fuzz run crm_request`: see `salvage_fuzz::fuzz_entry::crm_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    salvage_fuzz::fuzz_entry::crm_request(data);
});
