//! Reading a TOML table key by key for the loader.

use crate::matcher::{self, Check, FieldExpectation};

/// The keys of a table, taken one by one, so that leftovers can be refused.
pub(super) struct Fields {
    table: toml::Table,
    at: String,
}

impl Fields {
    pub(super) fn new(table: toml::Table, at: impl Into<String>) -> Fields {
        Fields {
            table,
            at: at.into(),
        }
    }

    pub(super) fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.table.remove(key)
    }

    pub(super) fn field(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err((self.field(key), "must be a string".into())),
        }
    }

    pub(super) fn boolean(&mut self, key: &str) -> Result<Option<bool>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(_) => Err((self.field(key), "must be true or false".into())),
        }
    }

    pub(super) fn table(&mut self, key: &str) -> Result<Option<toml::Table>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(_) => Err((self.field(key), "must be a table".into())),
        }
    }

    pub(super) fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    _ => Err((self.field(key), "must be an array of strings".into())),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err((self.field(key), "must be an array of strings".into())),
        }
    }

    pub(super) fn fields(&mut self, key: &str) -> Result<Vec<FieldExpectation>, (String, String)> {
        match self.table(key)? {
            None => Ok(Vec::new()),
            Some(t) => matcher::parse_fields(&t).map_err(|e| (self.field(key), e)),
        }
    }

    pub(super) fn checks(&mut self, key: &str) -> Result<Vec<Check>, (String, String)> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(v) => matcher::parse_checks(&v).map_err(|e| (self.field(key), e)),
        }
    }

    pub(super) fn finish(self, known: &[&str]) -> Result<(), (String, String)> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(k) => Err((
                self.field(k),
                format!("unknown field (known here: {})", known.join(", ")),
            )),
        }
    }
}
