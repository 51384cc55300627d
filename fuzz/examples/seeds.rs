//! Writes a starting corpus for each target: the sample traces in each codec's encoding.
//!
//! `cargo run --example seeds` from `fuzz/`; the files go to `corpus/<target>/`.

use std::fs;

use cache_core::{Codec, Compressed, Json, MsgPack};
use cache_fuzz::{Trace, sample_traces};

/// The codecs whose encodings seed one target.
type Codecs = Vec<Box<dyn Codec<Trace>>>;

fn main() -> std::io::Result<()> {
    let targets: [(&str, Codecs); 3] = [
        ("decode_json", vec![Box::new(Json)]),
        ("decode_msgpack", vec![Box::new(MsgPack)]),
        (
            "decode_lz4",
            vec![
                Box::new(Compressed::new(Json).min_size(0)),
                Box::new(Compressed::new(MsgPack).min_size(0)),
                Box::new(Compressed::new(Json)),
            ],
        ),
    ];
    for (target, codecs) in targets {
        let dir = format!("corpus/{target}");
        fs::create_dir_all(&dir)?;
        for (c, codec) in codecs.iter().enumerate() {
            for (t, trace) in sample_traces().iter().enumerate() {
                let bytes = codec.encode(trace).expect("sample traces encode");
                fs::write(format!("{dir}/seed-{c}-{t}"), bytes)?;
            }
        }
    }
    Ok(())
}
