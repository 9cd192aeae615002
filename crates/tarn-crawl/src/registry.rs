//! Crawled tables' definitions on disk: `<lake dir>/crawled/<layer>/<table>.json`, each written to
//! a temporary file and renamed over the old one, so a reader sees the old or the new definition.

use std::path::{Path, PathBuf};

use crate::CrawledTable;

fn folder(lake_dir: &Path) -> PathBuf {
    lake_dir.join("crawled")
}

fn path_of(lake_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    folder(lake_dir).join(namespace).join(format!("{name}.json"))
}

/// The definition of `namespace.name`, if the crawler registered it.
pub fn load(lake_dir: &Path, namespace: &str, name: &str) -> Result<Option<CrawledTable>, String> {
    // Names come from requests: only plain names lead to a definition file.
    let plain = |n: &str| !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\']);
    if !plain(namespace) || !plain(name) {
        return Ok(None);
    }
    let path = path_of(lake_dir, namespace, name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Every crawled table, sorted by namespace and name. Unreadable definitions are errors.
pub fn load_all(lake_dir: &Path) -> Result<Vec<CrawledTable>, String> {
    let mut tables = Vec::new();
    let Ok(namespaces) = std::fs::read_dir(folder(lake_dir)) else { return Ok(tables) };
    for ns in namespaces.flatten() {
        let Ok(files) = std::fs::read_dir(ns.path()) else { continue };
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                tables.push(serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?);
            }
        }
    }
    tables.sort_by(|a: &CrawledTable, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(tables)
}

/// Writes `table`'s definition (replacing the previous one atomically).
pub fn save(lake_dir: &Path, table: &CrawledTable) -> Result<(), String> {
    let path = path_of(lake_dir, &table.namespace, &table.name);
    let dir = path.parent().expect("a definition has a folder");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let temporary = path.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(table).map_err(|e| e.to_string())?;
    std::fs::write(&temporary, body).map_err(|e| format!("{}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, &path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Forgets `namespace.name` (its files stay where they are). `false` if it was not registered.
pub fn remove(lake_dir: &Path, namespace: &str, name: &str) -> Result<bool, String> {
    let path = path_of(lake_dir, namespace, name);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
