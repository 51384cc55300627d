//! `Compressed::decode` of arbitrary bytes, around Json and MsgPack: a value or an error,
//! never a panic, never an allocation over `max_size` (run with `-malloc_limit_mb` to check).
#![no_main]

use cache_core::{Compressed, Json, MsgPack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cache_fuzz::decode_all(&Compressed::new(Json), data);
    cache_fuzz::decode_all(&Compressed::new(MsgPack).max_size(1 << 16), data);
});
