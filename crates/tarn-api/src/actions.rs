//! The action tables of the APIs (`X-Amz-Target: <prefix>.<Action>` → handler).

use crate::error::ApiError;

/// The handler of `op` in `actions`, or AWS's unknown-operation error naming `<prefix>.<op>`.
pub(crate) fn find<H: Copy>(actions: &[(&str, H)], target_prefix: &str, op: &str) -> Result<H, ApiError> {
    actions
        .iter()
        .find(|(name, _)| *name == op)
        .map(|(_, handler)| *handler)
        .ok_or_else(|| ApiError::unknown_operation(format!("Unknown operation {target_prefix}.{op}")))
}
