use tarn_streams::CreateStream;
use tarn_streams::model::StreamMode;

use super::{Ctx, check_tag_chars, read_tags};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, NAME, Violations};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = input.string(&mut v, "StreamName", true, 1, 128, Some(NAME))?;
    let shard_count = input.int(&mut v, "ShardCount", false, 1, 100_000)?;
    let mode = match input.structure("StreamModeDetails")? {
        Some(details) => details.enumeration(&mut v, "StreamMode", true, &["PROVISIONED", "ON_DEMAND"])?,
        None => None,
    };
    let tags = read_tags(&input, &mut v, false)?;
    let max_record_kib = input.int(&mut v, "MaxRecordSizeInKiB", false, 1024, 10240)?;
    input.int(&mut v, "WarmThroughputMiBps", false, 0, i64::MAX)?;
    v.finish()?;
    check_tag_chars(&tags)?;
    let mode = if mode == Some("ON_DEMAND") { StreamMode::OnDemand } else { StreamMode::Provisioned };
    ctx.streams.create_stream(CreateStream {
        name: name.expect("required").to_owned(),
        shard_count: shard_count.map(|n| n as u32),
        mode,
        tags: tags.into_iter().collect(),
        max_record_size_kib: max_record_kib.map(|k| k as u32),
    })?;
    Ok(crate::server::empty())
}
