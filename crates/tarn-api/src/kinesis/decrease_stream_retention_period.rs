use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, Violations};

/// DecreaseStreamRetentionPeriod.
pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let hours = input.int(&mut v, "RetentionPeriodHours", true, 1, 100_000)?;
    v.finish()?;
    ctx.streams.change_retention(&stream.resolve(ctx)?, hours.expect("required") as u32, false)?;
    Ok(crate::server::empty())
}
