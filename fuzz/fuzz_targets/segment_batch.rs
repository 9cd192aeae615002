//! The segment batch decoder never panics, and what it accepts re-encodes to the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tarn_log::codec::{self, RecordRef};

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    let mut records = Vec::new();
    if let Ok(header) = codec::decode_batch(&buf, 0, &mut records) {
        assert_eq!(records.len() as u32, header.count);
        let refs: Vec<RecordRef<'_>> =
            records.iter().map(|r| RecordRef { partition_key: &r.partition_key, data: &r.data }).collect();
        let mut again = Vec::new();
        codec::encode_batch(header.base_offset, header.arrival_ms, &refs, &mut again);
        assert_eq!(&again[..], &data[..header.total_len]);
    }
});
