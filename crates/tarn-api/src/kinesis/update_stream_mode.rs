use tarn_streams::model::StreamMode;

use super::Ctx;
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, STREAM_ARN, Violations};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let arn = input.string(&mut v, "StreamARN", true, 1, 2048, Some(STREAM_ARN))?;
    let mode = match input.structure("StreamModeDetails")? {
        Some(d) => d.enumeration(&mut v, "StreamMode", true, &["PROVISIONED", "ON_DEMAND"])?,
        None => {
            v.add(None, "streamModeDetails", "Member must not be null");
            None
        }
    };
    input.int(&mut v, "WarmThroughputMiBps", false, 0, i64::MAX)?;
    v.finish()?;
    let name = ctx.streams.resolve_name(None, arn)?;
    let mode = if mode == Some("ON_DEMAND") { StreamMode::OnDemand } else { StreamMode::Provisioned };
    ctx.streams.update_stream_mode(&name, mode)?;
    Ok(crate::server::empty())
}
