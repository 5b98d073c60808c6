//! Printing rows: an aligned text table, a JSON array of objects, or JSON lines; and the lines on
//! stderr that are not errors (warnings, notes), which `--quiet` silences.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::args::Format;

/// Whether `--quiet` is on. Process-wide, like stderr itself: the lines it silences are printed
/// from every layer of the command line, the config file's reading included.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Turns `--quiet` on or off (once, when the command line is parsed).
pub(crate) fn set_quiet(on: bool) {
    QUIET.store(on, Ordering::Relaxed);
}

/// Whether `--quiet` is on: stderr carries errors and `dump`'s summary only.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints `line` (a `warning: …`, a note) on stderr, unless `--quiet`.
pub(crate) fn note(line: &str) {
    if !quiet() {
        eprintln!("{line}");
    }
}

/// Writes `rows` (arrays in `columns` order) to `out` in `format`.
pub(crate) fn write_rows(
    out: &mut impl Write,
    format: Format,
    columns: &[String],
    rows: &[Vec<Value>],
) -> io::Result<()> {
    match format {
        Format::Table => write_table(out, columns, rows),
        Format::Json => {
            let objects: Vec<Object<'_>> =
                rows.iter().map(|r| Object { columns, row: r }).collect();
            serde_json::to_writer_pretty(&mut *out, &objects)?;
            writeln!(out)
        }
        Format::Jsonl => {
            for row in rows {
                serde_json::to_writer(&mut *out, &Object { columns, row })?;
                writeln!(out)?;
            }
            Ok(())
        }
    }
}

/// A row as a JSON object whose keys keep the column order (a `serde_json::Map` would sort them).
struct Object<'a> {
    columns: &'a [String],
    row: &'a [Value],
}

impl serde::Serialize for Object<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.columns.len()))?;
        for (column, value) in self.columns.iter().zip(self.row) {
            map.serialize_entry(column, value)?;
        }
        map.end()
    }
}

/// The text of one cell: strings as they are (control characters escaped, so that a row stays on
/// one line, while non-ASCII text is printed as it is), `null` as `NULL`, everything else as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let mut text = String::with_capacity(s.len());
            for c in s.chars() {
                if c.is_control() {
                    text.extend(c.escape_default());
                } else {
                    text.push(c);
                }
            }
            text
        }
        Value::Null => "NULL".to_owned(),
        other => other.to_string(),
    }
}

fn write_table(out: &mut impl Write, columns: &[String], rows: &[Vec<Value>]) -> io::Result<()> {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| width(c))
                .chain([width(name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Numeric columns are right-aligned, as in psql, so that digits line up.
    let numeric: Vec<bool> = (0..columns.len())
        .map(|i| {
            let mut values =
                rows.iter().filter_map(|r| r.get(i)).filter(|v| !v.is_null()).peekable();
            values.peek().is_some() && values.all(Value::is_number)
        })
        .collect();
    let line =
        |out: &mut dyn Write, texts: &mut dyn Iterator<Item = (usize, &str)>| -> io::Result<()> {
            let mut text = String::new();
            for (i, t) in texts {
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = widths[i].saturating_sub(width(t));
                if numeric[i] {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(t);
                } else {
                    text.push_str(t);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
    line(out, &mut columns.iter().map(String::as_str).enumerate())?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &mut rule.iter().map(String::as_str).enumerate())?;
    for row in &cells {
        line(out, &mut row.iter().map(String::as_str).enumerate().take(columns.len()))?;
    }
    writeln!(out, "({} row{})", rows.len(), if rows.len() == 1 { "" } else { "s" })
}

/// Lays out `cells` (a header row first, then data rows, all of one width) as aligned text lines:
/// columns two spaces apart, `right(i)` columns padded on the left (numbers), the others on the
/// right, trailing spaces trimmed. Shared by `status` and the dump summary.
pub(crate) fn aligned_table<R: AsRef<[String]>>(
    cells: &[R],
    right: impl Fn(usize) -> bool,
) -> String {
    let columns = cells.first().map_or(0, |r| r.as_ref().len());
    let widths: Vec<usize> = (0..columns)
        .map(|i| cells.iter().map(|c| c.as_ref()[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in cells {
        let mut line = String::new();
        for (i, cell) in row.as_ref().iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if right(i) {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(format: Format, rows: &[Vec<Value>]) -> String {
        let columns = vec!["id".to_owned(), "name".to_owned(), "cost".to_owned()];
        let mut out = Vec::new();
        write_rows(&mut out, format, &columns, rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn sample() -> Vec<Vec<Value>> {
        vec![
            vec![json!(1), json!("Базовый"), json!(9.5)],
            vec![json!(10), json!("a\nb"), Value::Null],
        ]
    }

    #[test]
    fn table_aligns_text_left_and_numbers_right() {
        assert_eq!(
            render(Format::Table, &sample()),
            "id  name     cost\n--  -------  ----\n 1  Базовый   9.5\n10  a\\nb     NULL\n(2 rows)\n"
        );
        assert_eq!(render(Format::Table, &[]), "id  name  cost\n--  ----  ----\n(0 rows)\n");
    }

    #[test]
    fn json_formats_name_the_columns_in_order() {
        assert_eq!(
            render(Format::Jsonl, &sample()),
            "{\"id\":1,\"name\":\"Базовый\",\"cost\":9.5}\n{\"id\":10,\"name\":\"a\\nb\",\"cost\":null}\n"
        );
        let parsed: Value = serde_json::from_str(&render(Format::Json, &sample())).unwrap();
        assert_eq!(parsed[1], json!({"id": 10, "name": "a\nb", "cost": null}));
        assert_eq!(render(Format::Json, &[]), "[]\n");
    }
}
