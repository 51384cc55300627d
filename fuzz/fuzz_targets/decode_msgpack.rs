//! `MsgPack::decode` of arbitrary bytes: a value or an error, never a panic, never an
//! allocation the input's length prefixes ask for without the bytes to back them.
#![no_main]

use cache_core::MsgPack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cache_fuzz::decode_all(&MsgPack, data);
});
