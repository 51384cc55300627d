//! `Json::decode` of arbitrary bytes: a value or an error, never a panic.
#![no_main]

use cache_core::Json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cache_fuzz::decode_all(&Json, data);
});
