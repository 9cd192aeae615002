//! Request decoding (JSON 1.1 and CBOR) and input validation never panic on any body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tarn_api::protocol::Codec;
use tarn_api::protocol::input::{Input, NAME, Violations};

fuzz_target!(|data: &[u8]| {
    for codec in [Codec::Json, Codec::Cbor] {
        if let Ok(doc) = codec.decode(data) {
            let encoded = codec.encode(&doc);
            let _ = codec.decode(&encoded);
            if let Ok(input) = Input::root(&doc) {
                let mut v = Violations::default();
                let _ = input.string(&mut v, "StreamName", true, 1, 128, Some(NAME));
                let _ = input.int(&mut v, "Limit", false, 1, 10_000);
                let _ = input.timestamp("Timestamp");
                if let Ok(Some(records)) = input.list_of_structures("Records") {
                    for r in records {
                        let _ = r.blob(&mut v, "Data", true);
                    }
                }
                let _ = v.finish();
            }
        }
    }
});
