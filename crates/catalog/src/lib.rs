//! The catalog of known IPTVPortal tables.
//!
//! A real portal returns rows as bare arrays, with no column names and no types. To write named,
//! typed output the rest of the workspace needs to know what a table looks like; this crate is that
//! knowledge, and nothing else: no I/O, no dependencies, so that the simulator (which creates the
//! tables) and the sinks (which name and type the columns) can share it without pulling each other in.
//!
//! Beside the tables it holds the calendar arithmetic of `timestamp` values ([`time`]): the text
//! form the simulator writes and the sinks parse is part of what a column type means.
//!
//! The single source of truth is `catalog.toml` beside this crate's manifest. `cargo xtask codegen`
//! turns it into `src/generated.rs`; `cargo xtask codegen --check` (also run as a test) fails when the
//! two disagree.

#![deny(missing_docs)]

mod generated;
pub mod time;

pub use generated::TABLES;

/// The type of a column's values, as the wire protocol carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnType {
    /// A JSON integer that fits in `i64`.
    Integer,
    /// A JSON number with a fractional part (`f64`).
    Float,
    /// A JSON boolean.
    Boolean,
    /// A JSON string.
    Text,
    /// A JSON string of the form `2023-01-01 10:00:00` (no zone: the portal's local time).
    Timestamp,
}

impl ColumnType {
    /// The name used in `catalog.toml` and in checkpoint files.
    pub const fn as_str(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::Text => "text",
            ColumnType::Timestamp => "timestamp",
        }
    }

    /// Parses a name produced by [`ColumnType::as_str`].
    pub fn from_name(name: &str) -> Option<ColumnType> {
        Some(match name {
            "integer" => ColumnType::Integer,
            "float" => ColumnType::Float,
            "boolean" => ColumnType::Boolean,
            "text" => ColumnType::Text,
            "timestamp" => ColumnType::Timestamp,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column of a known table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column's name on the wire.
    pub name: &'static str,
    /// The type of its values.
    pub ty: ColumnType,
    /// Whether the portal may return `null` for it.
    pub nullable: bool,
    /// Whether it holds a secret (a password, a token) that an export should leave out unless it
    /// is needed: docs/tables.md marks it and says how.
    pub sensitive: bool,
    /// Whether it identifies a person or a household (a name, an e-mail or street address, a
    /// phone number, a device's MAC or IP address): docs/tables.md marks it, since an export that
    /// leaves the operator's systems may have to leave it out.
    pub personal: bool,
}

/// One known table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The table's name on the wire (the `from` of a select).
    pub name: &'static str,
    /// What the table holds, in a sentence.
    pub description: &'static str,
    /// Its columns in the order `"*"` returns them.
    pub columns: &'static [Column],
    /// The numeric, unique, ascending key that keyset traversal walks, if the table has one.
    pub id_column: Option<&'static str>,
    /// The timestamp column that records when a row last changed (inserts and updates set it to
    /// their instant), if the table has one: what an incremental sync reads a window of.
    pub change_column: Option<&'static str>,
}

impl Table {
    /// The column called `name`, if the table has one.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The names of the columns, in order.
    pub fn column_names(&self) -> impl ExactSizeIterator<Item = &'static str> + '_ {
        self.columns.iter().map(|c| c.name)
    }
}

/// The known table called `name`, if there is one.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_unique_columns_and_a_valid_id_column() {
        for t in TABLES {
            let mut names: Vec<_> = t.column_names().collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "duplicate column in {}", t.name);
            if let Some(id) = t.id_column {
                let col =
                    t.column(id).unwrap_or_else(|| panic!("{}: id column {id} missing", t.name));
                assert_eq!(col.ty, ColumnType::Integer, "{}: id column must be an integer", t.name);
                assert!(!col.nullable, "{}: id column must not be nullable", t.name);
            }
        }
    }

    #[test]
    fn type_names_round_trip() {
        for ty in [
            ColumnType::Integer,
            ColumnType::Float,
            ColumnType::Boolean,
            ColumnType::Text,
            ColumnType::Timestamp,
        ] {
            assert_eq!(ColumnType::from_name(ty.as_str()), Some(ty));
        }
        assert_eq!(ColumnType::from_name("blob"), None);
    }

    #[test]
    fn the_subscribers_password_is_sensitive() {
        let sensitive: Vec<String> = TABLES
            .iter()
            .flat_map(|t| {
                t.columns.iter().filter(|c| c.sensitive).map(|c| format!("{}.{}", t.name, c.name))
            })
            .collect();
        assert_eq!(sensitive, ["subscriber.password"]);
    }

    #[test]
    fn names_addresses_and_device_addresses_are_personal_data() {
        let personal: Vec<String> = TABLES
            .iter()
            .flat_map(|t| {
                t.columns.iter().filter(|c| c.personal).map(|c| format!("{}.{}", t.name, c.name))
            })
            .collect();
        assert_eq!(
            personal,
            [
                "subscriber.email",
                "subscriber.first_name",
                "subscriber.middle_name",
                "subscriber.surname",
                "subscriber.phone",
                "subscriber.address",
                "terminal.mac_addr",
                "terminal.inet_addr",
                "terminal_playlog.mac_addr"
            ]
        );
    }

    #[test]
    fn lookup_by_name() {
        assert_eq!(table("terminal").map(|t| t.name), Some("terminal"));
        assert!(table("no_such_table").is_none());
    }
}
