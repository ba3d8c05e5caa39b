//! N6: the Visa category of a decline whose gateway gave none, from per-processor tables of raw
//! response codes. The shipped defaults are data (`visa_categories.toml`, with their sources); a
//! setup's tables override them entry by entry.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The shipped tables, as TOML (sources in the file).
pub const SHIPPED_VISA_CATEGORIES: &str = include_str!("visa_categories.toml");

/// The category of a code found in no table: generic.
pub const UNKNOWN_CODE_CATEGORY: u8 = 4;

/// A bad table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeTableError {
    #[error("network_rules.visa_categories: {0}")]
    Parse(String),
    #[error(
        "network_rules.visa_categories.{processor}.\"{code}\": category {category} is not 1, 2, 3 or 4"
    )]
    BadCategory {
        processor: String,
        code: String,
        category: u8,
    },
}

/// Raw response code → Visa category, per processor (`default` for every processor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct VisaCategoryTables {
    pub tables: BTreeMap<String, BTreeMap<String, u8>>,
}

impl VisaCategoryTables {
    /// The shipped tables.
    pub fn shipped() -> VisaCategoryTables {
        // The shipped file is part of the build and checked by a test; a broken file is a
        // build defect, answered by no table rather than a panic.
        VisaCategoryTables::from_toml(SHIPPED_VISA_CATEGORIES).unwrap_or_default()
    }

    pub fn from_toml(text: &str) -> Result<VisaCategoryTables, CodeTableError> {
        let tables: VisaCategoryTables =
            toml::from_str(text).map_err(|e| CodeTableError::Parse(e.to_string()))?;
        tables.check()?;
        Ok(tables)
    }

    /// Every category is 1-4.
    pub fn check(&self) -> Result<(), CodeTableError> {
        for (processor, table) in &self.tables {
            for (code, category) in table {
                if !(1..=4).contains(category) {
                    return Err(CodeTableError::BadCategory {
                        processor: processor.clone(),
                        code: code.clone(),
                        category: *category,
                    });
                }
            }
        }
        Ok(())
    }

    /// `overrides` laid over `self`, entry by entry.
    pub fn overlaid_with(&self, overrides: &VisaCategoryTables) -> VisaCategoryTables {
        let mut out = self.clone();
        for (processor, table) in &overrides.tables {
            let into = out.tables.entry(processor.clone()).or_default();
            for (code, category) in table {
                into.insert(code.clone(), *category);
            }
        }
        out
    }

    /// The category of `code` from `processor`: its own table, then `default`, then 4.
    pub fn category(&self, processor: Option<&str>, code: &str) -> u8 {
        let code = code.trim();
        processor
            .and_then(|p| self.tables.get(p))
            .and_then(|t| t.get(code))
            .or_else(|| self.tables.get("default").and_then(|t| t.get(code)))
            .copied()
            .unwrap_or(UNKNOWN_CODE_CATEGORY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n6_the_shipped_table_parses_and_names_the_never_approve_codes() {
        let t = VisaCategoryTables::shipped();
        assert!(!t.tables.is_empty(), "the shipped table must parse");
        for code in [
            "04", "07", "12", "14", "15", "41", "43", "46", "57", "R0", "R1", "R3",
        ] {
            assert_eq!(t.category(None, code), 1, "code {code}");
        }
        assert_eq!(t.category(None, "51"), 2);
        assert_eq!(t.category(None, "54"), 3);
    }

    #[test]
    fn n6_an_unknown_code_is_category_4() {
        let t = VisaCategoryTables::shipped();
        assert_eq!(t.category(None, "05"), 4);
        assert_eq!(t.category(Some("nmi"), "zz-unheard-of"), 4);
    }

    #[test]
    fn n6_a_processor_table_wins_over_default_and_a_setup_over_the_shipped() {
        let shipped = VisaCategoryTables::shipped();
        let setup = VisaCategoryTables::from_toml(
            "[nmi]\n\"200\" = 1\n\"51\" = 3\n[default]\n\"05\" = 2\n",
        )
        .unwrap();
        let t = shipped.overlaid_with(&setup);
        assert_eq!(t.category(Some("nmi"), "200"), 1);
        assert_eq!(t.category(Some("nmi"), "51"), 3);
        assert_eq!(t.category(Some("stripe"), "51"), 2);
        assert_eq!(t.category(Some("stripe"), "05"), 2);
        assert_eq!(t.category(Some("stripe"), "200"), 4);
    }

    #[test]
    fn n6_a_category_outside_1_to_4_is_refused_naming_the_entry() {
        let e = VisaCategoryTables::from_toml("[nmi]\n\"200\" = 7\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "network_rules.visa_categories.nmi.\"200\": category 7 is not 1, 2, 3 or 4"
        );
    }
}
