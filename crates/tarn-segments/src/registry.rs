//! The segment registry: every segment by name, the API-created ones persisted in
//! `<data_dir>/segments.json` (replaced atomically), and a [`Runner`] told of every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::SegmentDef;

/// Starts and stops deliveries; the binary wires it to `tarn-delivery`.
pub trait Runner: Send + Sync {
    fn start(&self, def: &SegmentDef);
    fn stop(&self, name: &str);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentError {
    Exists(String),
    NotFound(String),
    /// Declared in `tarn.toml`; change the file instead.
    Declared(String),
    Invalid(String),
    Io(String),
}

impl std::error::Error for SegmentError {}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentError::Exists(n) => write!(f, "segment {n} already exists"),
            SegmentError::NotFound(n) => write!(f, "segment {n} does not exist"),
            SegmentError::Declared(n) => write!(f, "segment {n} is declared in the config file; change it there"),
            SegmentError::Invalid(m) | SegmentError::Io(m) => f.write_str(m),
        }
    }
}

pub struct Segments {
    path: PathBuf,
    defs: Mutex<BTreeMap<String, SegmentDef>>,
    runner: OnceLock<Arc<dyn Runner>>,
}

impl Segments {
    /// Loads the persisted segments under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Segments, SegmentError> {
        let path = data_dir.join("segments.json");
        let defs: Vec<SegmentDef> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| SegmentError::Io(format!("{} is not valid: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(SegmentError::Io(format!("{}: {e}", path.display()))),
        };
        let defs = defs.into_iter().map(|d| (d.name.clone(), d)).collect();
        Ok(Segments { path, defs: Mutex::new(defs), runner: OnceLock::new() })
    }

    /// Sets the runner and starts every segment known so far. Call once.
    pub fn run_with(&self, runner: Arc<dyn Runner>) {
        for def in self.list() {
            runner.start(&def);
        }
        let _ = self.runner.set(runner);
    }

    fn runner(&self) -> Option<&Arc<dyn Runner>> {
        self.runner.get()
    }

    /// Adds a segment declared in the config file (kept in memory only).
    pub fn declare(&self, mut def: SegmentDef) -> Result<(), SegmentError> {
        def.declared = true;
        let mut defs = self.defs.lock().expect("segments lock");
        if let Some(existing) = defs.get(&def.name)
            && !existing.declared
        {
            return Err(SegmentError::Exists(def.name));
        }
        defs.insert(def.name.clone(), def);
        Ok(())
    }

    pub fn create(&self, def: SegmentDef) -> Result<(), SegmentError> {
        {
            let mut defs = self.defs.lock().expect("segments lock");
            if defs.contains_key(&def.name) {
                return Err(SegmentError::Exists(def.name));
            }
            defs.insert(def.name.clone(), def.clone());
            if let Err(e) = self.persist(&defs) {
                defs.remove(&def.name);
                return Err(e);
            }
        }
        if let Some(r) = self.runner() {
            r.start(&def);
        }
        Ok(())
    }

    pub fn delete(&self, name: &str) -> Result<SegmentDef, SegmentError> {
        let def = {
            let mut defs = self.defs.lock().expect("segments lock");
            match defs.get(name) {
                None => return Err(SegmentError::NotFound(name.to_owned())),
                Some(d) if d.declared => return Err(SegmentError::Declared(name.to_owned())),
                Some(_) => {}
            }
            let def = defs.remove(name).expect("checked");
            if let Err(e) = self.persist(&defs) {
                defs.insert(name.to_owned(), def);
                return Err(e);
            }
            def
        };
        if let Some(r) = self.runner() {
            r.stop(name);
        }
        Ok(def)
    }

    /// Changes a segment with `change`, persists it, and restarts its delivery if `restart`.
    pub fn update(
        &self,
        name: &str,
        restart: bool,
        change: impl FnOnce(&mut SegmentDef) -> Result<(), SegmentError>,
    ) -> Result<SegmentDef, SegmentError> {
        let def = {
            let mut defs = self.defs.lock().expect("segments lock");
            let current = defs.get(name).ok_or_else(|| SegmentError::NotFound(name.to_owned()))?;
            if current.declared {
                return Err(SegmentError::Declared(name.to_owned()));
            }
            let mut changed = current.clone();
            change(&mut changed)?;
            let previous = defs.insert(name.to_owned(), changed.clone()).expect("present");
            if let Err(e) = self.persist(&defs) {
                defs.insert(name.to_owned(), previous);
                return Err(e);
            }
            changed
        };
        if restart && let Some(r) = self.runner() {
            r.stop(name);
            r.start(&def);
        }
        Ok(def)
    }

    pub fn get(&self, name: &str) -> Option<SegmentDef> {
        self.defs.lock().expect("segments lock").get(name).cloned()
    }

    pub fn list(&self) -> Vec<SegmentDef> {
        self.defs.lock().expect("segments lock").values().cloned().collect()
    }

    fn persist(&self, defs: &BTreeMap<String, SegmentDef>) -> Result<(), SegmentError> {
        let io = |e: std::io::Error| SegmentError::Io(format!("cannot save {}: {e}", self.path.display()));
        let persisted: Vec<&SegmentDef> = defs.values().filter(|d| !d.declared).collect();
        let bytes = serde_json::to_vec_pretty(&persisted).map_err(|e| SegmentError::Io(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceKind;

    fn def(name: &str) -> SegmentDef {
        SegmentDef::new(name, "raw", name, SourceKind::DirectPut, name, 1)
    }

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);
    impl Runner for Log {
        fn start(&self, def: &SegmentDef) {
            self.0.lock().unwrap().push(format!("start {} v{}", def.name, def.version));
        }
        fn stop(&self, name: &str) {
            self.0.lock().unwrap().push(format!("stop {name}"));
        }
    }

    #[test]
    fn created_segments_survive_reopening_and_declared_ones_are_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let segments = Segments::open(dir.path()).unwrap();
        let log = Arc::new(Log::default());
        segments.declare(def("from_config")).unwrap();
        segments.run_with(log.clone());
        segments.create(def("a")).unwrap();
        assert_eq!(segments.create(def("a")), Err(SegmentError::Exists("a".into())));
        segments
            .update("a", true, |d| {
                d.version += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(segments.delete("from_config"), Err(SegmentError::Declared("from_config".into())));
        segments.create(def("b")).unwrap();
        segments.delete("b").unwrap();
        assert_eq!(
            *log.0.lock().unwrap(),
            ["start from_config v1", "start a v1", "stop a", "start a v2", "start b v1", "stop b"]
        );
        let reopened = Segments::open(dir.path()).unwrap();
        let names: Vec<String> = reopened.list().into_iter().map(|d| format!("{} v{}", d.name, d.version)).collect();
        assert_eq!(names, ["a v2"]);
    }
}
