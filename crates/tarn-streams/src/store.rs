//! Durable metadata files: written to a temporary file, fsynced, renamed into place, and the
//! directory fsynced, so a crash leaves either the old or the new version, never a mix.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::model::StreamMeta;

pub const META_FILE: &str = "stream.json";

pub fn write_meta(dir: &Path, meta: &StreamMeta) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    write_atomic(dir, META_FILE, &bytes)
}

pub fn read_meta(dir: &Path) -> std::io::Result<StreamMeta> {
    let bytes = fs::read(dir.join(META_FILE))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not valid stream metadata: {e}", dir.join(META_FILE).display()),
        )
    })
}

pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    fs::File::open(dir)?.sync_all()
}

/// Reads the server's secret for signing tokens, creating it on first start.
pub fn load_or_create_key(data_dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = data_dir.join("token.key");
    match fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes.try_into().expect("32 bytes")),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} must hold exactly 32 bytes; delete it to make a new key", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_atomic(data_dir, "token.key", &key)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}
