//! The suite: every scenario file of a directory, loaded together, filtered by rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::loader::{file_stem, load_file, load_templates, Templates};
use super::model::{Scenario, ScenarioFile};
use crate::catalogue;
use crate::error::LoadError;

/// Every scenario file of a directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Suite {
    pub files: Vec<ScenarioFile>,
}

impl Suite {
    /// Loads every `*.toml` of `dir` (sorted by name); `_*.toml` files hold shared templates.
    /// Scenario ids must be unique across the suite.
    pub fn load_dir(dir: &Path) -> Result<Suite, LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Read {
            file: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut templates = Templates::new();
        let (shared, scenario_files): (Vec<PathBuf>, Vec<PathBuf>) = paths
            .into_iter()
            .partition(|p| file_stem(p).starts_with('_'));
        for p in &shared {
            let text = read(p)?;
            templates.extend(load_templates(&text, p)?);
        }
        let mut suite = Suite::default();
        for p in &scenario_files {
            let text = read(p)?;
            suite.files.push(load_file(&text, p, &templates)?);
        }
        if suite.files.is_empty() {
            return Err(LoadError::File {
                file: dir.to_path_buf(),
                reason: "no scenario files (*.toml) here".into(),
            });
        }
        suite.check_unique_ids()?;
        Ok(suite)
    }

    fn check_unique_ids(&self) -> Result<(), LoadError> {
        let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
        for f in &self.files {
            for s in &f.scenarios {
                if let Some(other) = seen.insert(&s.id, &f.path) {
                    return Err(LoadError::Scenario {
                        file: f.path.clone(),
                        scenario: s.id.clone(),
                        field: "id".into(),
                        reason: format!("also used in {}", other.display()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every scenario.
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.files.iter().flat_map(|f| f.scenarios.iter())
    }

    /// The rule IDs no scenario covers.
    pub fn uncovered_rules(&self) -> Vec<&'static str> {
        let covered: BTreeSet<&str> = self
            .scenarios()
            .flat_map(|s| s.rules.iter().map(String::as_str))
            .collect();
        catalogue::RULES
            .iter()
            .filter(|r| !covered.contains(r.id))
            .map(|r| r.id)
            .collect()
    }

    /// Keeps the scenarios covering a rule `filters` select (IDs or group letters); none: all.
    pub fn only(mut self, filters: &[String]) -> Suite {
        if filters.is_empty() {
            return self;
        }
        for f in &mut self.files {
            f.scenarios.retain(|s| {
                s.rules
                    .iter()
                    .any(|r| filters.iter().any(|flt| catalogue::selects(flt, r)))
            });
        }
        self.files.retain(|f| !f.scenarios.is_empty());
        self
    }
}

fn read(p: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(p).map_err(|e| LoadError::Read {
        file: p.to_path_buf(),
        reason: e.to_string(),
    })
}
