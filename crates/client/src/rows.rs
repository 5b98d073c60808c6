//! The fast path of a select: a response body read straight into rows.
//!
//! The general path reads a body as `{"result": <any value>, "error": …}` and then takes the value
//! apart into rows: every array grows by pushing from nothing, so a 6-value row is allocated for 4
//! values and reallocated for 8, and the outer array doubles too (its buffer, one `Value` a slot, is
//! kept for the 24-byte rows it is unwrapped into).
//! Here a body of the usual shape, `{"result": [[…], …]}` with no error, becomes `Vec<Vec<Value>>`
//! in one pass: each row allocated once at the width of the row before it (the rows of one result
//! are equally wide), or at the select's own column count for the first, and the outer `Vec` made
//! for the select's `limit`. The values in a row are read by `Value`'s own `Deserialize`, so they
//! are exactly what the general path would make of them.
//!
//! This path only ever says "here are the rows" or "not for me": any other body (an `error`
//! member, a missing or null `result`, a result that is not an array of arrays, a duplicate member,
//! something that is not JSON) is left to the general path, which alone decides what it means.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Room made for rows before the first one is read, at most: a `limit` far above the rows a
/// response really holds must not cost more than this many empty slots (24 bytes each).
const MAX_PRESIZED_ROWS: u64 = 10_000;

/// Room made for integers before the first one is read, at most (8 bytes each): an id scan page
/// gets its whole `limit` at once, one allocation instead of a doubling series.
const MAX_PRESIZED_INTEGERS: u64 = 65_536;

/// What is known of a select's rows before its response arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RowsHint {
    /// The number of values in each row, when the select says (no `*` in its `data`).
    pub(crate) columns: Option<usize>,
    /// How many rows to make room for at once.
    pub(crate) rows: usize,
}

impl RowsHint {
    /// The hint for a select of `data.len()` values per row (`None` if `data` has a `*`), with at
    /// most `limit` rows.
    pub(crate) fn new(columns: Option<usize>, limit: Option<u64>) -> RowsHint {
        let rows = limit.map_or(0, |l| l.min(MAX_PRESIZED_ROWS));
        RowsHint { columns, rows: usize::try_from(rows).unwrap_or(0) }
    }
}

/// The rows of a JSON-RPC response `{"result": [[…], …], …}` with no `error` member (or a null
/// one), or `None` for any other body.
pub(crate) fn read_rows(body: &[u8], hint: RowsHint) -> Option<Vec<Vec<Value>>> {
    read_result(body, Rows(hint))
}

/// The integers of a JSON-RPC response `{"result": [[1], [2], …], …}` (rows of one integer each)
/// with no `error` member (or a null one), or `None` for any other body: one `i64` a row, where
/// [`read_rows`] would allocate a row and a `Value`.
pub(crate) fn read_i64s(body: &[u8], limit: Option<u64>) -> Option<Vec<i64>> {
    let room = limit.map_or(0, |l| l.min(MAX_PRESIZED_INTEGERS));
    read_result(body, Integers(usize::try_from(room).unwrap_or(0)))
}

/// The `result` of a response body, read by `seed`.
fn read_result<T>(body: &[u8], seed: impl for<'de> DeserializeSeed<'de, Value = T>) -> Option<T> {
    // What `serde_json::from_slice` does, with a seed: the value, then nothing but whitespace.
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = Envelope(seed).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(result)
}

/// A response object whose `result` `S` reads.
struct Envelope<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Envelope<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Envelope<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json-rpc response whose result is rows")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seed = Some(self.0);
        let mut result = None;
        let mut error_seen = false;
        while let Some(key) = map.next_key::<Member>()? {
            match key {
                Member::Result => match seed.take() {
                    Some(seed) => result = Some(map.next_value_seed(seed)?),
                    // Duplicates are refused as the general path's derived `Deserialize` refuses
                    // them.
                    None => return Err(de::Error::duplicate_field("result")),
                },
                Member::Error if error_seen => return Err(de::Error::duplicate_field("error")),
                Member::Error => {
                    error_seen = true;
                    // A null `error` is no error, to the general path too; any other is its to read.
                    if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                        return Err(de::Error::custom("the response has an error member"));
                    }
                }
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        result.ok_or_else(|| de::Error::missing_field("result"))
    }
}

/// A member name of the response object.
enum Member {
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_identifier(MemberVisitor)
    }
}

struct MemberVisitor;

impl Visitor<'_> for MemberVisitor {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
        Ok(match name {
            "result" => Member::Result,
            "error" => Member::Error,
            _ => Member::Other,
        })
    }
}

/// The `result` array: rows, each one an array.
struct Rows(RowsHint);

impl<'de> DeserializeSeed<'de> for Rows {
    type Value = Vec<Vec<Value>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows {
    type Value = Vec<Vec<Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::with_capacity(self.0.rows);
        let mut width = self.0.columns;
        while let Some(row) = seq.next_element_seed(Row(width))? {
            width = Some(row.len());
            rows.push(row);
        }
        Ok(rows)
    }
}

/// The `result` array of rows of one integer each, read into the integers: room made for this
/// many at once.
struct Integers(usize);

impl<'de> DeserializeSeed<'de> for Integers {
    type Value = Vec<i64>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Integers {
    type Value = Vec<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows of one integer")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::with_capacity(self.0);
        while let Some(OneInteger(value)) = seq.next_element()? {
            values.push(value);
        }
        Ok(values)
    }
}

/// A row `[<integer>]`: exactly one value, an integer in `i64`'s range.
struct OneInteger(i64);

impl<'de> Deserialize<'de> for OneInteger {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(OneIntegerVisitor)
    }
}

struct OneIntegerVisitor;

impl<'de> Visitor<'de> for OneIntegerVisitor {
    type Value = OneInteger;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row of one integer")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneInteger, A::Error> {
        let value =
            seq.next_element::<i64>()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(2, &self));
        }
        Ok(OneInteger(value))
    }
}

/// One row, allocated for the width given (the row before it, or the select's column count).
struct Row(Option<usize>);

impl<'de> DeserializeSeed<'de> for Row {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut row = Vec::with_capacity(self.0.unwrap_or(0));
        while let Some(value) = seq.next_element::<Value>()? {
            row.push(value);
        }
        if self.0.is_none() {
            // The first row of a result of unknown width grew by doubling; one shrink, once per
            // result, so that it holds no spare room either.
            row.shrink_to_fit();
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SIX: &[u8] = br#"{"jsonrpc":"2.0","id":1,"result":[[1,"a",null,true,2.5,{"k":[1]}],[2,"b",null,false,-1,[]],[3,"c",null,true,0,"x"]]}"#;

    #[test]
    fn integers_are_read_from_rows_of_one_integer_and_any_other_body_is_left_alone() {
        let read = |body: &str| read_i64s(body.as_bytes(), Some(40_000));
        assert_eq!(
            read(r#"{"jsonrpc":"2.0","id":3,"result":[[1],[-7],[9223372036854775807]]}"#),
            Some(vec![1, -7, i64::MAX])
        );
        assert_eq!(read(r#"{"result":[],"error":null}"#), Some(vec![]));
        for body in [
            r#"{"result":[[1],[2,3]]}"#,
            r#"{"result":[[1],[]]}"#,
            r#"{"result":[[1.5]]}"#,
            r#"{"result":[[1.0]]}"#,
            r#"{"result":[["1"]]}"#,
            r#"{"result":[[null]]}"#,
            r#"{"result":[[9223372036854775808]]}"#,
            r#"{"result":[1,2]}"#,
            r#"{"result":null}"#,
            r#"{"result":[[1]],"result":[[2]]}"#,
            r#"{"result":[[1]],"error":{"code":-1,"message":"x"}}"#,
            r#"{"error":{"code":-1,"message":"x"}}"#,
            r#"{"result":[[1]]} x"#,
            "",
        ] {
            assert_eq!(read(body), None, "{body}");
        }
    }

    #[test]
    fn rows_are_read_at_their_exact_width() {
        for columns in [Some(6), None] {
            let rows = read_rows(SIX, RowsHint::new(columns, Some(100))).unwrap();
            assert_eq!(rows.len(), 3);
            for row in &rows {
                assert_eq!((row.len(), row.capacity()), (6, 6), "hint {columns:?}");
            }
        }
        // A wrong column count costs room in the first row only.
        let rows = read_rows(SIX, RowsHint::new(Some(2), None)).unwrap();
        assert_eq!(rows.iter().map(Vec::capacity).collect::<Vec<_>>(), [8, 6, 6]);
    }

    #[test]
    fn the_outer_vec_is_presized_by_the_limit_within_a_cap() {
        let rows = read_rows(SIX, RowsHint::new(Some(6), Some(5000))).unwrap();
        assert_eq!(rows.capacity(), 5000);
        assert_eq!(RowsHint::new(None, Some(u64::MAX)).rows, 10_000);
        assert_eq!(RowsHint::new(None, None).rows, 0);
    }

    #[test]
    fn only_a_result_of_rows_without_an_error_is_read() {
        let hint = RowsHint::default();
        let read = |body: &str| read_rows(body.as_bytes(), hint);
        assert_eq!(read(r#"{"result":[]}"#), Some(vec![]));
        assert_eq!(read(r#"{"result":[[]],"error":null}"#), Some(vec![vec![]]));
        assert_eq!(
            read(r#" {"id":null,"result":[[1]],"x":{"error":1}} "#),
            Some(vec![vec![json!(1)]])
        );
        for body in [
            "",
            "null",
            "[[[1]]]",
            r#"{"result":null}"#,
            r#"{"result":{"id":1}}"#,
            r#"{"result":[1]}"#,
            r#"{"result":[[1],{"id":2}]}"#,
            r#"{"result":[[1]],"error":{"code":-1,"message":"no"}}"#,
            r#"{"error":{"code":-1,"message":"no"},"result":[[1]]}"#,
            r#"{"result":[[1]],"error":0}"#,
            r#"{"result":[[1]],"result":[[2]]}"#,
            r#"{"result":[[1]],"error":null,"error":null}"#,
            r#"{"error":null}"#,
            r#"{"result":[[1]]} x"#,
            r#"{"result":[[1]]"#,
        ] {
            assert_eq!(read(body), None, "{body}");
        }
    }

    #[test]
    fn values_are_what_serde_json_makes_of_them() {
        let rows = vec![vec![
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.1),
            json!("é\"\\\n\u{1F600}"),
            json!({"b": 1, "a": [null]}),
        ]];
        let body = serde_json::to_vec(&json!({ "result": rows })).unwrap();
        assert_eq!(read_rows(&body, RowsHint::default()), Some(rows));
    }
}
