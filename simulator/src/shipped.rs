//! The shipped scenarios, compiled into the binary: `salvage simulate` runs them from any
//! directory, by name (`default`, `slots`...), without the repository. A shipped scenario's
//! relative file references (its `setup.path`) resolve against the same embedded set, at the
//! paths the files have in the repository, so a scenario reads the same whether it comes from
//! the disk or from here.

use std::path::{Component, Path, PathBuf};

/// One embedded file, at its path in the repository.
#[derive(Debug, Clone, Copy)]
pub struct ShippedFile {
    /// The path in the repository, with `/` separators.
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! shipped {
    ($($path:literal => $file:literal),* $(,)?) => {
        &[$(ShippedFile { path: $path, text: include_str!($file) }),*]
    };
}

/// Every embedded file: the scenarios, and the setups they name.
pub const FILES: &[ShippedFile] = shipped! {
    "simulator/scenarios/default.toml" => "../scenarios/default.toml",
    "simulator/scenarios/slots.toml" => "../scenarios/slots.toml",
    "simulator/scenarios/cascade_all.toml" => "../scenarios/cascade_all.toml",
    "simulator/scenarios/expiry_days.toml" => "../scenarios/expiry_days.toml",
    "simulator/scenarios/network_rules.toml" => "../scenarios/network_rules.toml",
    "simulator/scenarios/sweep_slot.toml" => "../scenarios/sweep_slot.toml",
    "simulator/scenarios/setup.toml" => "../scenarios/setup.toml",
    "examples/salvage.toml" => "../../examples/salvage.toml",
};

/// The scenario run when none is named.
pub const DEFAULT: &str = "default";

const SCENARIO_DIR: &str = "simulator/scenarios/";

/// A shipped scenario: its name (the file's stem) and its file.
#[derive(Debug, Clone, Copy)]
pub struct ShippedScenario {
    pub name: &'static str,
    pub file: ShippedFile,
}

impl ShippedScenario {
    /// The scenario's `description` line, read from its text (empty when it has none).
    pub fn description(&self) -> String {
        toml::from_str::<toml::Table>(self.file.text)
            .ok()
            .and_then(|t| t.get("description")?.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// The shipped scenarios (files with a `[population]`: not the setups), in name order.
pub fn scenarios() -> Vec<ShippedScenario> {
    let mut out: Vec<ShippedScenario> = FILES
        .iter()
        .filter(|f| f.path.starts_with(SCENARIO_DIR) && f.text.contains("\n[population]"))
        .filter_map(|f| {
            let name = f.path.strip_prefix(SCENARIO_DIR)?.strip_suffix(".toml")?;
            Some(ShippedScenario { name, file: *f })
        })
        .collect();
    out.sort_by_key(|s| s.name);
    out
}

/// The shipped scenario called `name`: its name (`slots`), its file name (`slots.toml`) or its
/// path in the repository (`simulator/scenarios/slots.toml`).
pub fn scenario(name: &str) -> Option<ShippedScenario> {
    let name = name.trim();
    scenarios().into_iter().find(|s| {
        name == s.name || name == s.file.path || name.strip_suffix(".toml") == Some(s.name)
    })
}

/// `path` without `.` and with each `..` taking off the component before it (no file system
/// access).
pub fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
        }
    }
    parts.iter().collect()
}

/// The embedded file at `path` (a repository path, possibly with `.` and `..`).
pub fn file(path: &Path) -> Option<&'static str> {
    let wanted = normalize(path);
    FILES
        .iter()
        .find(|f| Path::new(f.path) == wanted)
        .map(|f| f.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_and_paths_find_the_same_scenario() {
        let names: Vec<&str> = scenarios().iter().map(|s| s.name).collect();
        for expected in [
            "default",
            "slots",
            "cascade_all",
            "expiry_days",
            "network_rules",
        ] {
            assert!(names.contains(&expected), "{names:?}");
        }
        assert!(!names.contains(&"setup"), "a setup is not a scenario");
        for name in ["slots", "slots.toml", "simulator/scenarios/slots.toml"] {
            assert_eq!(scenario(name).map(|s| s.name), Some("slots"), "{name}");
        }
        assert!(scenario("nope").is_none());
        assert!(scenario("setup").is_none());
        assert!(!scenario("default").unwrap().description().is_empty());
    }

    #[test]
    fn relative_references_resolve_in_the_embedded_set() {
        let from = Path::new("simulator/scenarios/default.toml");
        let dir = from.parent().unwrap();
        assert!(file(&dir.join("../../examples/salvage.toml")).is_some());
        assert!(file(&dir.join("setup.toml")).is_some());
        assert!(file(&dir.join("./setup.toml")).is_some());
        assert!(file(&dir.join("missing.toml")).is_none());
        assert_eq!(normalize(Path::new("a/b/../c/./d")), PathBuf::from("a/c/d"));
    }

    /// The embedded copies are the files of the repository (the list misses none).
    #[test]
    fn every_scenario_file_of_the_repository_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let shipped = file(&Path::new(SCENARIO_DIR).join(&name));
            assert_eq!(
                shipped,
                Some(std::fs::read_to_string(&path).unwrap().as_str()),
                "{name} is embedded as it is"
            );
        }
    }
}
