//! The output schema: column names, types and nullability, and the checks every value passes.

use iptvportal_catalog::time::parse_timestamp;
use iptvportal_catalog::{ColumnType, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, RowId};

/// One column of the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// The column's name, as written in headers, objects and the Parquet schema.
    pub name: String,
    /// The type every non-null value must have.
    #[serde(with = "column_type_name")]
    pub ty: ColumnType,
    /// Whether `null` is allowed.
    pub nullable: bool,
}

impl ColumnSpec {
    /// A column called `name` of type `ty`.
    pub fn new(name: impl Into<String>, ty: ColumnType, nullable: bool) -> ColumnSpec {
        ColumnSpec { name: name.into(), ty, nullable }
    }
}

/// The columns of an output, in the order the rows carry their values.
///
/// The schema is fixed when a dump starts and pinned in its checkpoint, so a resumed dump writes
/// the same header, the same object keys and the same Parquet schema as the run it continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// The columns, in row order.
    pub columns: Vec<ColumnSpec>,
}

impl Schema {
    /// The schema of a known table, for all its columns or for the listed ones in the listed order.
    pub fn from_catalog(table: &Table, columns: Option<&[String]>) -> Result<Schema, Error> {
        let columns = match columns {
            None => {
                table.columns.iter().map(|c| ColumnSpec::new(c.name, c.ty, c.nullable)).collect()
            }
            Some(names) => names
                .iter()
                .map(|name| {
                    let c = table.column(name).ok_or_else(|| Error::UnknownColumn {
                        table: table.name.to_owned(),
                        column: name.clone(),
                    })?;
                    Ok(ColumnSpec::new(c.name, c.ty, c.nullable))
                })
                .collect::<Result<_, Error>>()?,
        };
        Ok(Schema { columns })
    }

    /// Infers a schema for a table the catalog does not know, from its first chunk of rows.
    ///
    /// Per column, over the non-null values: all booleans give `Boolean`; all integers give
    /// `Integer`; integers and fractions mixed give `Float`; all strings of the form
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` give `Timestamp`; anything else (other strings, mixed kinds,
    /// nested values, no values at all) gives `Text`. Every inferred column is nullable: a first
    /// chunk without nulls does not prove a column never has one, and failing a long dump on the
    /// first later null would be a false alarm. A later value of another type is still an error.
    pub fn infer(names: &[String], rows: &[Vec<Value>]) -> Schema {
        let columns = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let values = rows.iter().filter_map(|r| r.get(i)).filter(|v| !v.is_null());
                ColumnSpec::new(name.clone(), infer_type(values), true)
            })
            .collect();
        Schema { columns }
    }

    /// The column names, in order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// The position of the `id` column, which names rows in error messages.
    pub(crate) fn id_index(&self) -> Option<usize> {
        self.columns.iter().position(|c| c.name == "id")
    }

    /// Checks every row of a chunk against the schema. `first_row` is the 0-based number of the
    /// chunk's first row in the output, so rows without an `id` are named by their place.
    pub(crate) fn validate(
        &self,
        table: &str,
        rows: &[Vec<Value>],
        first_row: u64,
    ) -> Result<(), Error> {
        let id_index = self.id_index();
        let row_id = |offset: usize, row: &[Value]| match id_index.and_then(|i| row.get(i)) {
            Some(v) if !v.is_null() => RowId::Id(v.to_string()),
            _ => RowId::Number(first_row + offset as u64 + 1),
        };
        for (offset, row) in rows.iter().enumerate() {
            if row.len() != self.columns.len() {
                return Err(Error::RowWidth {
                    table: table.to_owned(),
                    row_id: row_id(offset, row),
                    expected: self.columns.len(),
                    found: row.len(),
                });
            }
            for (col, value) in self.columns.iter().zip(row) {
                if !fits(col, value) {
                    return Err(Error::TypeMismatch {
                        table: table.to_owned(),
                        column: col.name.clone(),
                        row_id: row_id(offset, row),
                        expected: col.ty,
                        nullable: col.nullable,
                        value: shorten(value),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The largest integer magnitude an `f64` holds exactly: integers up to it may sit in a float
/// column without losing a digit; beyond it they would be silently rounded, so they are refused.
const F64_EXACT: u64 = 1 << 53;

/// Whether `value` may be written to `col` as it is.
pub(crate) fn fits(col: &ColumnSpec, value: &Value) -> bool {
    match (col.ty, value) {
        (_, Value::Null) => col.nullable,
        (ColumnType::Integer, Value::Number(n)) => n.as_i64().is_some(),
        (ColumnType::Float, Value::Number(n)) => {
            n.is_f64() || n.as_i64().is_some_and(|i| i.unsigned_abs() <= F64_EXACT)
        }
        (ColumnType::Boolean, Value::Bool(_)) | (ColumnType::Text, Value::String(_)) => true,
        (ColumnType::Timestamp, Value::String(s)) => parse_timestamp(s).is_some(),
        _ => false,
    }
}

/// The type that fits every value, as described on [`Schema::infer`].
fn infer_type<'a>(values: impl Iterator<Item = &'a Value>) -> ColumnType {
    let mut seen: Option<ColumnType> = None;
    for v in values {
        let ty = match v {
            Value::Bool(_) => ColumnType::Boolean,
            Value::Number(n) if n.as_i64().is_some() => ColumnType::Integer,
            Value::Number(n) if n.is_f64() => ColumnType::Float,
            Value::String(s) if parse_timestamp(s).is_some() => ColumnType::Timestamp,
            // Strings, integers beyond i64, arrays and objects: only text can describe them, and
            // for the non-strings the first write reports the mismatch clearly.
            _ => return ColumnType::Text,
        };
        seen = Some(match (seen, ty) {
            (None, t) => t,
            (Some(a), b) if a == b => a,
            (
                Some(ColumnType::Integer | ColumnType::Float),
                ColumnType::Integer | ColumnType::Float,
            ) => ColumnType::Float,
            _ => return ColumnType::Text,
        });
    }
    seen.unwrap_or(ColumnType::Text)
}

/// A value rendered for an error message, cut so that a huge string does not flood the terminal.
pub(crate) fn shorten(value: &Value) -> String {
    const MAX: usize = 80;
    let s = value.to_string();
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

/// Serializes a [`ColumnType`] by its catalog name, the form checkpoint files hold.
mod column_type_name {
    use iptvportal_catalog::ColumnType;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    #[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's `with` fixes this signature")]
    pub(super) fn serialize<S: Serializer>(ty: &ColumnType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(ty.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ColumnType, D::Error> {
        let name = String::deserialize(d)?;
        ColumnType::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown column type {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn infer_covers_each_type_and_the_fallbacks() {
        let rows = vec![
            vec![
                json!(1),
                json!(1),
                json!(true),
                json!("a"),
                json!("2023-01-01 10:00:00"),
                Value::Null,
                json!(1),
            ],
            vec![
                json!(2),
                json!(2.5),
                json!(false),
                json!("b"),
                json!("2023-01-02 10:00:00.25"),
                Value::Null,
                json!("x"),
            ],
        ];
        let schema = Schema::infer(&names(&["i", "f", "b", "t", "ts", "nul", "mixed"]), &rows);
        let types: Vec<_> = schema.columns.iter().map(|c| c.ty).collect();
        assert_eq!(
            types,
            [
                ColumnType::Integer,
                ColumnType::Float,
                ColumnType::Boolean,
                ColumnType::Text,
                ColumnType::Timestamp,
                ColumnType::Text,
                ColumnType::Text
            ]
        );
        assert!(schema.columns.iter().all(|c| c.nullable));
    }

    #[test]
    fn infer_of_no_rows_is_all_text() {
        let schema = Schema::infer(&names(&["a"]), &[]);
        assert_eq!(schema.columns, [ColumnSpec::new("a", ColumnType::Text, true)]);
    }

    #[test]
    fn from_catalog_keeps_the_requested_order_and_rejects_unknown_columns() {
        let terminal = iptvportal_catalog::table("terminal").unwrap();
        let all = Schema::from_catalog(terminal, None).unwrap();
        assert_eq!(all.names().collect::<Vec<_>>(), terminal.column_names().collect::<Vec<_>>());
        let some = Schema::from_catalog(terminal, Some(&names(&["mac_addr", "id"]))).unwrap();
        assert_eq!(some.names().collect::<Vec<_>>(), ["mac_addr", "id"]);
        let err = Schema::from_catalog(terminal, Some(&names(&["id", "nope"]))).unwrap_err();
        assert!(
            matches!(err, Error::UnknownColumn { ref table, ref column } if table == "terminal" && column == "nope")
        );
    }

    #[test]
    fn validation_refuses_widening_truncation_and_nulls() {
        let schema = Schema {
            columns: vec![
                ColumnSpec::new("id", ColumnType::Integer, false),
                ColumnSpec::new("f", ColumnType::Float, true),
            ],
        };
        assert!(
            schema
                .validate("t", &[vec![json!(1), json!(3)], vec![json!(2), json!(0.5)]], 0)
                .is_ok()
        );
        let err = schema
            .validate("t", &[vec![json!(7), json!(1.5)], vec![json!(8), json!("1.5")]], 0)
            .unwrap_err();
        match err {
            Error::TypeMismatch { table, column, row_id, expected, nullable, value } => {
                assert_eq!((table.as_str(), column.as_str()), ("t", "f"));
                assert_eq!((expected, nullable), (ColumnType::Float, true));
                assert_eq!(row_id, RowId::Id("8".into()));
                assert_eq!(value, "\"1.5\"");
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = schema.validate("t", &[vec![json!(2.5), Value::Null]], 0).unwrap_err();
        assert!(matches!(err, Error::TypeMismatch { ref column, .. } if column == "id"));
        // An integer too large for f64 to hold exactly is not rounded into a float column.
        let err = schema
            .validate("t", &[vec![json!(1), json!(9_007_199_254_740_993_i64)]], 0)
            .unwrap_err();
        assert!(matches!(err, Error::TypeMismatch { ref column, .. } if column == "f"));
        let err = schema.validate("t", &[vec![Value::Null, json!(1.0)]], 41).unwrap_err();
        assert!(matches!(
            err,
            Error::TypeMismatch {
                row_id: RowId::Number(42),
                expected: ColumnType::Integer,
                nullable: false,
                ..
            }
        ));
        let err = schema.validate("t", &[vec![json!(1)]], 0).unwrap_err();
        assert!(matches!(err, Error::RowWidth { expected: 2, found: 1, .. }));
    }

    #[test]
    fn schema_round_trips_through_json_with_type_names() {
        let schema =
            Schema { columns: vec![ColumnSpec::new("registered", ColumnType::Timestamp, false)] };
        let text = serde_json::to_string(&schema).unwrap();
        assert_eq!(
            text,
            r#"{"columns":[{"name":"registered","ty":"timestamp","nullable":false}]}"#
        );
        assert_eq!(serde_json::from_str::<Schema>(&text).unwrap(), schema);
    }
}
