use super::{Ctx, PRIMARY, check_workgroup, engine_version};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = input.string(&mut v, "WorkGroup", true, 1, 128, None)?;
    v.finish()?;
    check_workgroup(name.unwrap_or_default())?;
    let configuration = Obj::new()
        .put("ResultConfiguration", Obj::new())
        .put("EnforceWorkGroupConfiguration", false)
        .put("PublishCloudWatchMetricsEnabled", false)
        .put("RequesterPaysEnabled", false)
        .put("EngineVersion", engine_version());
    let workgroup = Obj::new()
        .put("Name", PRIMARY)
        .put("State", "ENABLED")
        .put("Configuration", configuration)
        .put("Description", "The workgroup of every query on this server")
        .put("CreationTime", crate::protocol::doc::timestamp(ctx.started_ms));
    Ok(Obj::new().put("WorkGroup", workgroup).done())
}
