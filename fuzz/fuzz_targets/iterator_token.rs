//! Shard iterator tokens: arbitrary text never opens (it is not signed), and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tarn_streams::token::{IteratorPosition, TokenSigner};

fuzz_target!(|data: &[u8]| {
    let signer = TokenSigner::new([7; 32]);
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(pos) = IteratorPosition::decode(&signer, text)
    {
        // Only a token this key sealed can open; re-sealing it must give the same text.
        assert_eq!(pos.encode(&signer), text);
    }
});
