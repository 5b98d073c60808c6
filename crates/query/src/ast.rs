//! The JSONSQL `select` vocabulary: a typed tree that serializes to exactly the wire JSON and parses
//! back from it.
//!
//! Conversion goes through [`serde_json::Value`] in both directions ([`Select::to_json`],
//! [`Select::from_json`]); the `serde` impls are thin wrappers over those. The wire form is small
//! (a request, not a result), so the intermediate value costs nothing measurable, and one hand-written
//! mapping is far easier to keep exact than derive attributes for a format with this many shapes.
//!
//! Dialect decisions the public sources leave open (see `docs/jsonsql-dialect.md`):
//! - In a predicate's operand list the first plain string is a column and later plain strings are
//!   literals; a qualified `{"t":"col"}` is always a column.
//! - `order_by` direction is written `"col DESC"` / `"col ASC"`.
//!
//! Read-only forms (accepted by the parser because public sources show them against real portals,
//! never written by [`Select::to_json`], whose output is unchanged): dotted columns `"t.col"`, a
//! qualified column with an alias `{"t":"col","as":"x"}`, the short function form
//! `{"concat":[…],"as":"x"}`, `{"select":{…}}` around a sub-select, `{"values":[[v],…]}` in `in`,
//! `{"not":"col"}`, `{"table":"t"}` entries after the first in `from` (a cross join), and `having`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::Error;

/// Whether `s` is a valid identifier (table, column, alias or function name): ASCII letters, digits
/// and `_`, not starting with a digit. Everything else is refused before it can reach a request.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn check_identifier(s: &str) -> Result<(), Error> {
    if is_identifier(s) { Ok(()) } else { Err(Error::InvalidIdentifier { name: s.to_owned() }) }
}

/// A column written as a plain string: `"name"`, or dotted `"t.name"` (the form public examples
/// use; read only, a qualified column is written `{"t":"name"}`).
fn dotted_column(s: &str) -> Result<ColumnRef, Error> {
    match s.split_once('.') {
        Some((t, c)) if is_identifier(t) && is_identifier(c) => ColumnRef::qualified(t, c),
        _ => ColumnRef::new(s),
    }
}

/// The value of `key` if `map` is `{key: <object>}` and nothing else: the `{"select":{…}}` and
/// `{"values":…}` wrappers.
fn only_key<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    (map.len() == 1).then(|| map.get(key)).flatten()
}

/// A column, optionally qualified by a table name or alias: `"name"` or `{"t":"name"}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnRef {
    /// The table name or alias qualifying the column, if any.
    pub table: Option<String>,
    /// The column name.
    pub name: String,
}

impl ColumnRef {
    /// An unqualified column.
    pub fn new(name: impl Into<String>) -> Result<ColumnRef, Error> {
        let name = name.into();
        check_identifier(&name)?;
        Ok(ColumnRef { table: None, name })
    }

    /// A column qualified by a table name or alias.
    pub fn qualified(
        table: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<ColumnRef, Error> {
        let (table, name) = (table.into(), name.into());
        check_identifier(&table)?;
        check_identifier(&name)?;
        Ok(ColumnRef { table: Some(table), name })
    }

    /// Writes the wire form, checking the names again: the fields are public, so a tree built by hand
    /// may hold anything, and a bad name must fail here rather than reach a request.
    fn to_json(&self) -> Result<Value, Error> {
        check_identifier(&self.name)?;
        Ok(match &self.table {
            None => Value::String(self.name.clone()),
            Some(t) => {
                check_identifier(t)?;
                Value::Object(Map::from_iter([(t.clone(), Value::String(self.name.clone()))]))
            }
        })
    }

    /// Parses a qualified column object `{"t":"col"}`, if `map` is one.
    fn from_qualified(map: &Map<String, Value>) -> Option<Result<ColumnRef, Error>> {
        if map.len() != 1 {
            return None;
        }
        let (table, name) = map.iter().next()?;
        let name = name.as_str()?;
        Some(ColumnRef::qualified(table.as_str(), name))
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.table {
            Some(t) => write!(f, "{t}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A function call: `{"function":"count","args":["*"],"as":"cnt"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// The function's name (`count`, `max`, `distinct`, …).
    pub name: String,
    /// Its arguments; written as an array on the wire.
    pub args: Vec<Operand>,
    /// The result's alias (`"as"`), if any.
    pub alias: Option<String>,
}

impl Function {
    /// A call of `name` with `args` and no alias.
    pub fn new(name: impl Into<String>, args: Vec<Operand>) -> Result<Function, Error> {
        let name = name.into();
        check_identifier(&name)?;
        Ok(Function { name, args, alias: None })
    }

    /// `count(*)`.
    pub fn count_star() -> Function {
        Function { name: "count".to_owned(), args: vec![Operand::Star], alias: None }
    }

    /// Sets the alias.
    pub fn alias(mut self, alias: impl Into<String>) -> Result<Function, Error> {
        let alias = alias.into();
        check_identifier(&alias)?;
        self.alias = Some(alias);
        Ok(self)
    }

    fn to_json(&self) -> Result<Value, Error> {
        check_identifier(&self.name)?;
        let mut map = Map::new();
        map.insert("function".to_owned(), Value::String(self.name.clone()));
        // Arguments take the column-first rule: the first plain string is a column.
        let args = self
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| a.to_json(i == 0))
            .collect::<Result<_, _>>()?;
        map.insert("args".to_owned(), Value::Array(args));
        if let Some(alias) = &self.alias {
            check_identifier(alias)?;
            map.insert("as".to_owned(), Value::String(alias.clone()));
        }
        Ok(Value::Object(map))
    }

    fn from_json(map: &Map<String, Value>) -> Result<Function, Error> {
        let name = map
            .get("function")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("function", map))?;
        check_identifier(name)?;
        let args = match map.get("args") {
            None => Vec::new(),
            Some(v) => Function::args_from_json(v)?,
        };
        let alias = match map.get("as") {
            None => None,
            Some(Value::String(a)) => {
                check_identifier(a)?;
                Some(a.clone())
            }
            Some(_) => return Err(malformed("function alias", map)),
        };
        for key in map.keys() {
            if !matches!(key.as_str(), "function" | "args" | "as") {
                return Err(Error::Malformed {
                    what: "function",
                    detail: format!("unknown key {key:?}"),
                });
            }
        }
        Ok(Function { name: name.to_owned(), args, alias })
    }
}

impl Function {
    /// Parses `args`: an array, or a single argument written bare (`"args":"id"`). The first
    /// plain string is a column, as everywhere, unless it cannot be one: `[":","port"]` (from a
    /// public example, `concat(':', port)`) starts with the literal `":"`.
    fn args_from_json(value: &Value) -> Result<Vec<Operand>, Error> {
        let arg = |v: &Value, first: bool| match v {
            Value::String(s)
                if first && s != "*" && !is_identifier(s) && dotted_column(s).is_err() =>
            {
                Ok(Operand::Literal(Scalar::String(s.clone())))
            }
            v => Operand::from_json(v, first),
        };
        match value {
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| arg(v, i == 0)).collect(),
            v => Ok(vec![arg(v, true)?]),
        }
    }

    /// The short form `{"concat":["protocol","://","inet_addr"],"as":"mrl"}`: one key naming the
    /// function, its value the argument array, and an optional `"as"`.
    fn from_short(map: &Map<String, Value>) -> Option<Result<Function, Error>> {
        let mut names = map.keys().filter(|k| k.as_str() != "as");
        let (Some(name), None) = (names.next(), names.next()) else { return None };
        let args @ Value::Array(_) = &map[name] else { return None };
        Some((|| {
            check_identifier(name)?;
            let alias = optional_identifier(map, "as")?;
            Ok(Function { name: name.clone(), args: Function::args_from_json(args)?, alias })
        })())
    }
}

/// A literal value: JSON `null`, a boolean, a number or a string.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fractional part or beyond `i64`.
    Float(f64),
    /// A string.
    String(String),
}

impl Scalar {
    /// The JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::from(*i),
            // Non-finite floats have no JSON form; they become null, as serde_json does.
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Scalar::String(s) => Value::String(s.clone()),
        }
    }

    /// The scalar a JSON value is, if it is one (not an array or object).
    pub fn from_json(value: &Value) -> Option<Scalar> {
        Some(match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Scalar::Float(n.as_f64().unwrap_or(f64::NAN)), Scalar::Int),
            Value::String(s) => Scalar::String(s.clone()),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}
impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Int(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::Int(v.into())
    }
}
impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}
impl From<&str> for Scalar {
    fn from(v: &str) -> Self {
        Scalar::String(v.to_owned())
    }
}
impl From<String> for Scalar {
    fn from(v: String) -> Self {
        Scalar::String(v)
    }
}

/// One operand of a predicate, one function argument, or one item of `data`.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `"*"`: every column (in `data` and as the argument of `count`).
    Star,
    /// A column.
    Column(ColumnRef),
    /// A literal value.
    Literal(Scalar),
    /// A function call.
    Function(Function),
    /// A sub-select (the right side of `in`).
    Select(Box<Select>),
    /// An operand with an alias, `{"t":"col","as":"x"}` in `data`: the alias names the result
    /// column and can be used in `order_by` and `group_by`. (A function carries its own alias in
    /// [`Function::alias`].)
    Aliased {
        /// The aliased operand (a qualified column on the wire).
        operand: Box<Operand>,
        /// The alias.
        alias: String,
    },
}

impl Operand {
    /// An unqualified column operand.
    pub fn column(name: impl Into<String>) -> Result<Operand, Error> {
        ColumnRef::new(name).map(Operand::Column)
    }

    /// Writes the wire form. `first` says whether this is the first operand of its list, the only
    /// place an unqualified column (or `*`) can be written as a plain string.
    fn to_json(&self, first: bool) -> Result<Value, Error> {
        Ok(match self {
            Operand::Star if first => Value::String("*".to_owned()),
            // Later on, `"*"` reads back as the string literal `*`.
            Operand::Star => {
                return Err(Error::Unrepresentable {
                    detail: "* can only be a first operand".to_owned(),
                });
            }
            Operand::Column(c) if c.table.is_none() && !first => {
                return Err(Error::Unrepresentable {
                    detail: format!(
                        "column {} after the first operand must be qualified ({{\"<table>\":\"{}\"}}); a plain string there is a literal",
                        c.name, c.name
                    ),
                });
            }
            // `{"function":"x"}` reads back as a call of `x` and `{"from":"x"}` as a sub-select, so a
            // column qualified by those two names has no unambiguous wire form.
            Operand::Column(ColumnRef { table: Some(t), name })
                if t == "function" || t == "from" =>
            {
                return Err(Error::Unrepresentable {
                    detail: format!(
                        "column {t}.{name}: a qualifier named {t:?} reads back as a {t} object"
                    ),
                });
            }
            Operand::Column(c) => c.to_json()?,
            Operand::Literal(Scalar::String(s)) if first => {
                return Err(Error::Unrepresentable {
                    detail: format!(
                        "the literal {s:?} cannot be a first operand: a plain string there is a column"
                    ),
                });
            }
            Operand::Literal(s) => s.to_json(),
            Operand::Function(f) => f.to_json()?,
            Operand::Select(s) => s.to_json()?,
            Operand::Aliased { operand, alias } => {
                check_identifier(alias)?;
                let Operand::Column(ColumnRef { table: Some(_), .. }) = operand.as_ref() else {
                    return Err(Error::Unrepresentable {
                        detail: format!("alias {alias:?} of anything but a qualified column"),
                    });
                };
                let mut value = operand.to_json(first)?;
                if let Value::Object(map) = &mut value {
                    map.insert("as".to_owned(), Value::String(alias.clone()));
                }
                value
            }
        })
    }

    fn from_json(value: &Value, first: bool) -> Result<Operand, Error> {
        match value {
            Value::String(s) if s == "*" && first => Ok(Operand::Star),
            Value::String(s) if first => Ok(Operand::Column(dotted_column(s)?)),
            Value::Object(map) if map.contains_key("function") => {
                Ok(Operand::Function(Function::from_json(map)?))
            }
            Value::Object(map) if map.contains_key("from") => {
                Ok(Operand::Select(Box::new(Select::from_map(map)?)))
            }
            Value::Object(map) if only_key(map, "select").is_some_and(Value::is_object) => {
                Ok(Operand::Select(Box::new(Select::from_json(&map["select"])?)))
            }
            Value::Object(map) => {
                if let Some(c) = ColumnRef::from_qualified(map) {
                    return Ok(Operand::Column(c?));
                }
                if let Some(f) = Function::from_short(map) {
                    return Ok(Operand::Function(f?));
                }
                // `{"t":"col","as":"x"}`: a qualified column with an alias.
                let mut rest = map.clone();
                let Some(Value::String(alias)) = rest.remove("as") else {
                    return Err(malformed("operand", map));
                };
                let Some(column) = ColumnRef::from_qualified(&rest) else {
                    return Err(malformed("operand", map));
                };
                check_identifier(&alias)?;
                Ok(Operand::Aliased { operand: Box::new(Operand::Column(column?)), alias })
            }
            Value::Array(_) => Err(Error::Malformed {
                what: "operand",
                detail: format!("unexpected array {value}"),
            }),
            v => Ok(Operand::Literal(Scalar::from_json(v).expect("not an array or object"))),
        }
    }
}

impl From<ColumnRef> for Operand {
    fn from(c: ColumnRef) -> Self {
        Operand::Column(c)
    }
}
impl From<Function> for Operand {
    fn from(f: Function) -> Self {
        Operand::Function(f)
    }
}
impl From<Scalar> for Operand {
    fn from(s: Scalar) -> Self {
        Operand::Literal(s)
    }
}

/// A binary comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompareOp {
    /// `eq`: `=`.
    Eq,
    /// `neq`: `<>`.
    Neq,
    /// `gt`: `>`.
    Gt,
    /// `gte`: `>=`.
    Gte,
    /// `lt`: `<`.
    Lt,
    /// `lte`: `<=`.
    Lte,
    /// `like`: SQL `LIKE` (case-sensitive; `\` escapes `%` and `_`).
    Like,
    /// `ilike`: case-insensitive `LIKE`.
    Ilike,
}

impl CompareOp {
    /// Every comparison operator.
    pub const ALL: [CompareOp; 8] = [
        CompareOp::Eq,
        CompareOp::Neq,
        CompareOp::Gt,
        CompareOp::Gte,
        CompareOp::Lt,
        CompareOp::Lte,
        CompareOp::Like,
        CompareOp::Ilike,
    ];

    /// The operator's key on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Neq => "neq",
            CompareOp::Gt => "gt",
            CompareOp::Gte => "gte",
            CompareOp::Lt => "lt",
            CompareOp::Lte => "lte",
            CompareOp::Like => "like",
            CompareOp::Ilike => "ilike",
        }
    }

    fn from_name(name: &str) -> Option<CompareOp> {
        CompareOp::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// The right side of `in`: a list of values or a sub-select.
#[derive(Debug, Clone, PartialEq)]
pub enum InList {
    /// `{"in":["id",1,2,3]}`.
    Values(Vec<Operand>),
    /// `{"in":["id",{"data":["id"],"from":"t"}]}`.
    Select(Box<Select>),
}

/// A `where` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `{"<op>":[left,right]}` for the comparison operators.
    Compare {
        /// The operator.
        op: CompareOp,
        /// The left operand (usually a column).
        left: Operand,
        /// The right operand (usually a literal).
        right: Operand,
    },
    /// `{"is":[left,right]}` or, negated, `{"is_not":[left,right]}`; `right` is `null` for IS NULL.
    Is {
        /// `is_not` rather than `is`.
        negated: bool,
        /// The left operand.
        left: Operand,
        /// The right operand (`null`, `true` or `false`).
        right: Operand,
    },
    /// `{"in":[left, a, b, …]}` or `{"in":[left, <select>]}`.
    In {
        /// The tested operand.
        left: Operand,
        /// The values or sub-select.
        list: InList,
    },
    /// `{"and":[e1,e2,…]}`.
    And(Vec<Expr>),
    /// `{"or":[e1,e2,…]}`.
    Or(Vec<Expr>),
    /// `{"not":[e]}`.
    Not(Box<Expr>),
}

impl Expr {
    /// The wire JSON of this condition.
    pub fn to_json(&self) -> Result<Value, Error> {
        let (key, operands): (&str, Vec<Value>) = match self {
            Expr::Compare { op, left, right } => {
                (op.as_str(), vec![left.to_json(true)?, right.to_json(false)?])
            }
            Expr::Is { negated, left, right } => (
                if *negated { "is_not" } else { "is" },
                vec![left.to_json(true)?, right.to_json(false)?],
            ),
            Expr::In { left, list } => {
                let mut operands = vec![left.to_json(true)?];
                match list {
                    // `{"in":["id"]}` is refused by every reader, ours included.
                    InList::Values(values) if values.is_empty() => {
                        return Err(Error::Unrepresentable {
                            detail: "in with no values".to_owned(),
                        });
                    }
                    InList::Values(values) => {
                        for v in values {
                            operands.push(v.to_json(false)?);
                        }
                    }
                    InList::Select(s) => operands.push(s.to_json()?),
                }
                ("in", operands)
            }
            // An empty `and`/`or` has no agreed meaning (true? false?) and our reader refuses it.
            Expr::And(items) | Expr::Or(items) if items.is_empty() => {
                return Err(Error::Unrepresentable {
                    detail: "and/or with no conditions".to_owned(),
                });
            }
            Expr::And(items) => ("and", items.iter().map(Expr::to_json).collect::<Result<_, _>>()?),
            Expr::Or(items) => ("or", items.iter().map(Expr::to_json).collect::<Result<_, _>>()?),
            Expr::Not(inner) => ("not", vec![inner.to_json()?]),
        };
        Ok(Value::Object(Map::from_iter([(key.to_owned(), Value::Array(operands))])))
    }

    /// Parses the wire JSON of a condition.
    pub fn from_json(value: &Value) -> Result<Expr, Error> {
        let Value::Object(map) = value else {
            return Err(Error::Malformed {
                what: "where",
                detail: format!("expected a one-key object, got {value}"),
            });
        };
        let mut entries = map.iter();
        let (Some((key, operands)), None) = (entries.next(), entries.next()) else {
            return Err(malformed("where (expected exactly one operator key)", map));
        };
        // `not` alone also takes a bare operand: `{"not":{"eq":[…]}}`.
        if key == "not" {
            return match operands {
                Value::Array(items) if items.len() == 1 => {
                    Ok(Expr::Not(Box::new(Expr::from_json(&items[0])?)))
                }
                Value::Array(items) => {
                    Err(Error::Arity { op: "not".to_owned(), expected: "1", got: items.len() })
                }
                // `{"not":"disabled"}`: a boolean column, read as `disabled = true`, which is
                // NULL, true or false exactly when `disabled` is.
                Value::String(column) => Ok(Expr::Not(Box::new(Expr::Compare {
                    op: CompareOp::Eq,
                    left: Operand::Column(dotted_column(column)?),
                    right: Operand::Literal(Scalar::Bool(true)),
                }))),
                bare => Ok(Expr::Not(Box::new(Expr::from_json(bare)?))),
            };
        }
        let Value::Array(items) = operands else {
            return Err(Error::Malformed {
                what: "where",
                detail: format!("operands of {key:?} must be an array"),
            });
        };
        let arity = |expected: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::Arity { op: key.clone(), expected, got: items.len() })
            }
        };
        match key.as_str() {
            "and" | "or" => {
                arity("at least 1", !items.is_empty())?;
                let exprs = items.iter().map(Expr::from_json).collect::<Result<Vec<_>, _>>()?;
                Ok(if key == "and" { Expr::And(exprs) } else { Expr::Or(exprs) })
            }
            "is" | "is_not" => {
                arity("2", items.len() == 2)?;
                Ok(Expr::Is {
                    negated: key == "is_not",
                    left: Operand::from_json(&items[0], true)?,
                    right: Operand::from_json(&items[1], false)?,
                })
            }
            "in" => {
                arity("at least 2", items.len() >= 2)?;
                let left = Operand::from_json(&items[0], true)?;
                let list = match &items[1..] {
                    [Value::Object(m)] if m.contains_key("from") => {
                        InList::Select(Box::new(Select::from_map(m)?))
                    }
                    [Value::Object(m)] if only_key(m, "select").is_some_and(Value::is_object) => {
                        InList::Select(Box::new(Select::from_json(&m["select"])?))
                    }
                    [Value::Object(m)] if only_key(m, "values").is_some() => {
                        InList::Values(in_values(&m["values"])?)
                    }
                    rest => InList::Values(
                        rest.iter()
                            .map(|v| Operand::from_json(v, false))
                            .collect::<Result<_, _>>()?,
                    ),
                };
                Ok(Expr::In { left, list })
            }
            other => match CompareOp::from_name(other) {
                Some(op) => {
                    arity("2", items.len() == 2)?;
                    Ok(Expr::Compare {
                        op,
                        left: Operand::from_json(&items[0], true)?,
                        right: Operand::from_json(&items[1], false)?,
                    })
                }
                None => Err(Error::UnknownOperator { op: other.to_owned() }),
            },
        }
    }
}

/// Sort direction in `order_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `ASC`.
    Asc,
    /// `DESC`.
    Desc,
}

/// One `order_by` item: `"col"`, `"col DESC"`, `{"t":"col"}` or `{"t":"col ASC"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderBy {
    /// The column to sort by.
    pub column: ColumnRef,
    /// The direction, if written; the server's default (ascending) otherwise.
    pub direction: Option<Direction>,
}

impl OrderBy {
    /// Parses the CLI and seed form: `"col"`, `"col ASC"`, `"col DESC"` (any case), `"t.col DESC"`.
    pub fn parse(s: &str) -> Result<OrderBy, Error> {
        let (column, direction) = split_direction(s)?;
        let column = match column.split_once('.') {
            Some((t, c)) => ColumnRef::qualified(t, c)?,
            None => ColumnRef::new(column)?,
        };
        Ok(OrderBy { column, direction })
    }

    /// Ascending by `name`.
    pub fn asc(name: impl Into<String>) -> Result<OrderBy, Error> {
        Ok(OrderBy { column: ColumnRef::new(name)?, direction: Some(Direction::Asc) })
    }

    fn to_json(&self) -> Result<Value, Error> {
        check_identifier(&self.column.name)?;
        let name = match self.direction {
            None => self.column.name.clone(),
            Some(Direction::Asc) => format!("{} ASC", self.column.name),
            Some(Direction::Desc) => format!("{} DESC", self.column.name),
        };
        Ok(match &self.column.table {
            None => Value::String(name),
            Some(t) => {
                check_identifier(t)?;
                Value::Object(Map::from_iter([(t.clone(), Value::String(name))]))
            }
        })
    }

    fn from_json(value: &Value) -> Result<OrderBy, Error> {
        match value {
            Value::String(s) => {
                let (column, direction) = split_direction(s)?;
                Ok(OrderBy { column: dotted_column(column)?, direction })
            }
            Value::Object(map) if map.len() == 1 => {
                let (table, v) = map.iter().next().expect("one entry");
                let s = v.as_str().ok_or_else(|| malformed("order_by", map))?;
                let (column, direction) = split_direction(s)?;
                Ok(OrderBy { column: ColumnRef::qualified(table.as_str(), column)?, direction })
            }
            other => {
                Err(Error::Malformed { what: "order_by", detail: format!("unexpected {other}") })
            }
        }
    }
}

impl fmt::Display for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.column)?;
        match self.direction {
            None => Ok(()),
            Some(Direction::Asc) => f.write_str(" ASC"),
            Some(Direction::Desc) => f.write_str(" DESC"),
        }
    }
}

fn split_direction(s: &str) -> Result<(&str, Option<Direction>), Error> {
    let mut words = s.split_whitespace();
    let column = words.next().ok_or_else(|| Error::InvalidIdentifier { name: s.to_owned() })?;
    let direction = match words.next() {
        None => None,
        Some(d) if d.eq_ignore_ascii_case("asc") => Some(Direction::Asc),
        Some(d) if d.eq_ignore_ascii_case("desc") => Some(Direction::Desc),
        Some(d) => {
            return Err(Error::Malformed {
                what: "order_by",
                detail: format!("{d:?} in {s:?} is not a direction (ASC or DESC)"),
            });
        }
    };
    if words.next().is_some() {
        return Err(Error::Malformed {
            what: "order_by",
            detail: format!("{s:?} has more than a column and a direction"),
        });
    }
    Ok((column, direction))
}

/// The kind of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoinKind {
    /// `"join_type":"inner"` (also the default when absent).
    Inner,
    /// `"join_type":"left"`.
    Left,
}

impl JoinKind {
    const fn as_str(self) -> &'static str {
        match self {
            JoinKind::Inner => "inner",
            JoinKind::Left => "left",
        }
    }
}

/// A table in `from`, with its alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// The table name.
    pub name: String,
    /// Its alias (`"as"`), if any.
    pub alias: Option<String>,
}

/// A join after the first table in `from`:
/// `{"join":"subscriber","join_type":"left","as":"s","on":{…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// The joined table and its alias.
    pub table: TableRef,
    /// Inner or left.
    pub kind: JoinKind,
    /// The join condition.
    pub on: Option<Expr>,
}

/// The `from` of a select: one table, optionally followed by joins.
#[derive(Debug, Clone, PartialEq)]
pub struct FromClause {
    /// The first (or only) table.
    pub table: TableRef,
    /// Joins, in order.
    pub joins: Vec<Join>,
}

impl FromClause {
    fn to_json(&self) -> Result<Value, Error> {
        let first = match &self.table.alias {
            None => {
                check_identifier(&self.table.name)?;
                Value::String(self.table.name.clone())
            }
            Some(a) => {
                check_identifier(&self.table.name)?;
                check_identifier(a)?;
                serde_json::json!({"table": self.table.name, "as": a})
            }
        };
        if self.joins.is_empty() {
            return Ok(first);
        }
        let mut items = vec![first];
        for j in &self.joins {
            check_identifier(&j.table.name)?;
            let mut map = Map::new();
            map.insert("join".to_owned(), Value::String(j.table.name.clone()));
            map.insert("join_type".to_owned(), Value::String(j.kind.as_str().to_owned()));
            if let Some(a) = &j.table.alias {
                check_identifier(a)?;
                map.insert("as".to_owned(), Value::String(a.clone()));
            }
            if let Some(on) = &j.on {
                map.insert("on".to_owned(), on.to_json()?);
            }
            items.push(Value::Object(map));
        }
        Ok(Value::Array(items))
    }

    fn from_json(value: &Value) -> Result<FromClause, Error> {
        let table_ref = |value: &Value| -> Result<TableRef, Error> {
            match value {
                Value::String(name) => {
                    check_identifier(name)?;
                    Ok(TableRef { name: name.clone(), alias: None })
                }
                Value::Object(map) => {
                    reject_unknown_keys("from", map, &["table", "as"])?;
                    let name = map
                        .get("table")
                        .and_then(Value::as_str)
                        .ok_or_else(|| malformed("from", map))?;
                    check_identifier(name)?;
                    let alias = optional_identifier(map, "as")?;
                    Ok(TableRef { name: name.to_owned(), alias })
                }
                other => {
                    Err(Error::Malformed { what: "from", detail: format!("unexpected {other}") })
                }
            }
        };
        match value {
            Value::Array(items) => {
                let (first, rest) = items
                    .split_first()
                    .ok_or(Error::Malformed { what: "from", detail: "empty array".to_owned() })?;
                let joins = rest
                    .iter()
                    .map(|item| {
                        let Value::Object(map) = item else {
                            return Err(Error::Malformed {
                                what: "join",
                                detail: format!("unexpected {item}"),
                            });
                        };
                        // A further `{"table":…}` entry is a cross join: an inner join without
                        // a condition.
                        if map.contains_key("table") && !map.contains_key("join") {
                            let table = table_ref(item)?;
                            return Ok(Join { table, kind: JoinKind::Inner, on: None });
                        }
                        reject_unknown_keys("join", map, &["join", "join_type", "as", "on"])?;
                        let name = map
                            .get("join")
                            .and_then(Value::as_str)
                            .ok_or_else(|| malformed("join", map))?;
                        check_identifier(name)?;
                        let kind = match map.get("join_type").and_then(Value::as_str) {
                            None | Some("inner") => JoinKind::Inner,
                            Some("left") => JoinKind::Left,
                            Some(other) => {
                                return Err(Error::Malformed {
                                    what: "join",
                                    detail: format!("unknown join_type {other:?}"),
                                });
                            }
                        };
                        let on = map
                            .get("on")
                            .filter(|on| !on.is_null())
                            .map(Expr::from_json)
                            .transpose()?;
                        Ok(Join {
                            table: TableRef {
                                name: name.to_owned(),
                                alias: optional_identifier(map, "as")?,
                            },
                            kind,
                            on,
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(FromClause { table: table_ref(first)?, joins })
            }
            other => Ok(FromClause { table: table_ref(other)?, joins: Vec::new() }),
        }
    }
}

/// A JSONSQL `select`: the `params` of a `"method":"select"` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// `distinct`: drop duplicate rows.
    pub distinct: bool,
    /// `data`: what each row holds, in order. Rows come back as arrays in this order.
    pub data: Vec<Operand>,
    /// `from`: the table and its joins.
    pub from: FromClause,
    /// `where`: the condition, if any.
    pub where_: Option<Expr>,
    /// `group_by`: grouping columns.
    pub group_by: Vec<ColumnRef>,
    /// `having`: the condition on groups, if any.
    pub having: Option<Expr>,
    /// A sub-select in `from`, `{"select":{…},"as":"q"}` as its first entry: when set,
    /// `from.table.name` is the sub-select's alias (`q`) and names no catalog table.
    pub from_select: Option<Box<Select>>,
    /// `order_by`: sort keys, in order.
    pub order_by: Vec<OrderBy>,
    /// `limit`: at most this many rows.
    pub limit: Option<u64>,
    /// `offset`: skip this many rows first.
    pub offset: Option<u64>,
}

impl Select {
    /// `select * from table`.
    pub fn from(table: impl Into<String>) -> Result<Select, Error> {
        let name = table.into();
        check_identifier(&name)?;
        Ok(Select {
            distinct: false,
            data: vec![Operand::Star],
            from: FromClause { table: TableRef { name, alias: None }, joins: Vec::new() },
            where_: None,
            group_by: Vec::new(),
            having: None,
            from_select: None,
            order_by: Vec::new(),
            limit: None,
            offset: None,
        })
    }

    /// Replaces `data` with these columns (`"*"` is accepted as a column name meaning every column).
    pub fn columns<I, S>(mut self, columns: I) -> Result<Select, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.data = columns
            .into_iter()
            .map(
                |c| if c.as_ref() == "*" { Ok(Operand::Star) } else { Operand::column(c.as_ref()) },
            )
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// Replaces `data`.
    #[must_use]
    pub fn data(mut self, data: Vec<Operand>) -> Select {
        self.data = data;
        self
    }

    /// Sets `where`, AND-ing with any condition already there.
    #[must_use]
    pub fn filter(mut self, expr: Expr) -> Select {
        self.where_ = Some(match self.where_.take() {
            None => expr,
            Some(Expr::And(mut items)) => {
                items.push(expr);
                Expr::And(items)
            }
            Some(existing) => Expr::And(vec![existing, expr]),
        });
        self
    }

    /// Appends a sort key.
    #[must_use]
    pub fn order_by(mut self, order: OrderBy) -> Select {
        self.order_by.push(order);
        self
    }

    /// Sets `limit`.
    #[must_use]
    pub fn limit(mut self, limit: u64) -> Select {
        self.limit = Some(limit);
        self
    }

    /// Sets `offset`.
    #[must_use]
    pub fn offset(mut self, offset: u64) -> Select {
        self.offset = Some(offset);
        self
    }

    /// The wire JSON of these params. Fails only for trees no wire form can express (an unqualified
    /// column after the first operand of a predicate, a string literal as the first).
    pub fn to_json(&self) -> Result<Value, Error> {
        // `"data":[]` is refused by our reader; a select of nothing is a bug in the caller.
        if self.data.is_empty() {
            return Err(Error::Unrepresentable {
                detail: "select with an empty data list".to_owned(),
            });
        }
        let mut map = Map::new();
        if self.distinct {
            map.insert("distinct".to_owned(), Value::Bool(true));
        }
        let data = self.data.iter().map(|d| d.to_json(true)).collect::<Result<_, _>>()?;
        map.insert("data".to_owned(), Value::Array(data));
        let mut from = self.from.to_json()?;
        if let Some(sub) = &self.from_select {
            if self.from.table.alias.is_some() {
                return Err(Error::Unrepresentable {
                    detail: "a sub-select in from is named by its table name alone".to_owned(),
                });
            }
            let entry = serde_json::json!({"select": sub.to_json()?, "as": self.from.table.name});
            match &mut from {
                Value::Array(items) => items[0] = entry,
                single => *single = entry,
            }
        }
        map.insert("from".to_owned(), from);
        if let Some(w) = &self.where_ {
            map.insert("where".to_owned(), w.to_json()?);
        }
        if !self.group_by.is_empty() {
            let group_by =
                self.group_by.iter().map(ColumnRef::to_json).collect::<Result<_, _>>()?;
            map.insert("group_by".to_owned(), Value::Array(group_by));
        }
        if let Some(h) = &self.having {
            map.insert("having".to_owned(), h.to_json()?);
        }
        match self.order_by.as_slice() {
            [] => {}
            [one] => {
                map.insert("order_by".to_owned(), one.to_json()?);
            }
            many => {
                let items = many.iter().map(OrderBy::to_json).collect::<Result<_, _>>()?;
                map.insert("order_by".to_owned(), Value::Array(items));
            }
        }
        if let Some(limit) = self.limit {
            map.insert("limit".to_owned(), Value::from(limit));
        }
        if let Some(offset) = self.offset {
            map.insert("offset".to_owned(), Value::from(offset));
        }
        Ok(Value::Object(map))
    }

    /// Parses the wire JSON of select params.
    pub fn from_json(value: &Value) -> Result<Select, Error> {
        match value {
            Value::Object(map) => Select::from_map(map),
            other => Err(Error::Malformed {
                what: "select",
                detail: format!("params must be an object, got {other}"),
            }),
        }
    }

    fn from_map(map: &Map<String, Value>) -> Result<Select, Error> {
        for key in map.keys() {
            if !matches!(
                key.as_str(),
                "data"
                    | "from"
                    | "where"
                    | "order_by"
                    | "group_by"
                    | "having"
                    | "limit"
                    | "offset"
                    | "distinct"
            ) {
                return Err(Error::Malformed {
                    what: "select",
                    detail: format!("unknown key {key:?}"),
                });
            }
        }
        let data = match map.get("data") {
            None => {
                return Err(Error::Malformed {
                    what: "select",
                    detail: "missing \"data\"".to_owned(),
                });
            }
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(Error::Malformed {
                    what: "select",
                    detail: "\"data\" is empty".to_owned(),
                });
            }
            Some(Value::Array(items)) => {
                items.iter().map(|v| Operand::from_json(v, true)).collect::<Result<_, _>>()?
            }
            Some(single) => vec![Operand::from_json(single, true)?],
        };
        let from_value = map
            .get("from")
            .ok_or(Error::Malformed { what: "select", detail: "missing \"from\"".to_owned() })?;
        let (from_value, from_select) = derived_table(from_value)?;
        let from = FromClause::from_json(&from_value)?;
        let where_ = map.get("where").filter(|w| !w.is_null()).map(Expr::from_json).transpose()?;
        let having = map.get("having").filter(|h| !h.is_null()).map(Expr::from_json).transpose()?;
        let order_by = match map.get("order_by") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().map(OrderBy::from_json).collect::<Result<_, _>>()?
            }
            Some(one) => vec![OrderBy::from_json(one)?],
        };
        let group_by = match map.get("group_by") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().map(group_column).collect::<Result<_, _>>()?
            }
            Some(one) => vec![group_column(one)?],
        };
        let distinct = match map.get("distinct") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::Malformed {
                    what: "distinct",
                    detail: format!("expected a boolean, got {other}"),
                });
            }
        };
        Ok(Select {
            distinct,
            data,
            from,
            where_,
            group_by,
            having,
            from_select,
            order_by,
            limit: unsigned(map, "limit")?,
            offset: unsigned(map, "offset")?,
        })
    }
}

fn group_column(value: &Value) -> Result<ColumnRef, Error> {
    match value {
        Value::String(s) => dotted_column(s),
        Value::Object(map) => {
            ColumnRef::from_qualified(map).unwrap_or_else(|| Err(malformed("group_by", map)))
        }
        other => Err(Error::Malformed { what: "group_by", detail: format!("unexpected {other}") }),
    }
}

/// Takes a sub-select `{"select":{…},"as":"q"}` out of the first entry of `from`, leaving
/// `{"table":"q"}` in its place for [`FromClause::from_json`]. The alias is required: a derived
/// table needs a name (as in PostgreSQL before 16).
fn derived_table(from: &Value) -> Result<(Value, Option<Box<Select>>), Error> {
    let first = match from {
        Value::Array(items) => items.first(),
        single => Some(single),
    };
    let Some(Value::Object(map)) = first else { return Ok((from.clone(), None)) };
    let Some(inner) = map.get("select").filter(|v| v.is_object()) else {
        return Ok((from.clone(), None));
    };
    reject_unknown_keys("from", map, &["select", "as"])?;
    let Some(alias) = optional_identifier(map, "as")? else {
        return Err(Error::Malformed {
            what: "from",
            detail: "a sub-select in from needs an alias (\"as\")".to_owned(),
        });
    };
    let sub = Select::from_json(inner)?;
    let placeholder = serde_json::json!({"table": alias});
    let from = match from {
        Value::Array(items) => {
            let mut items = items.clone();
            items[0] = placeholder;
            Value::Array(items)
        }
        _ => placeholder,
    };
    Ok((from, Some(Box::new(sub))))
}

/// The rows of `{"values":[["12345"],["123456"]]}` in `in`: one value each, all literals.
fn in_values(rows: &Value) -> Result<Vec<Operand>, Error> {
    let bad = || Error::Malformed {
        what: "values",
        detail: format!("expected a non-empty array of one-value rows, got {rows}"),
    };
    let Value::Array(rows) = rows else { return Err(bad()) };
    if rows.is_empty() {
        return Err(bad());
    }
    rows.iter()
        .map(|row| match row {
            Value::Array(one) if one.len() == 1 => Operand::from_json(&one[0], false),
            _ => Err(bad()),
        })
        .collect()
}

fn unsigned(map: &Map<String, Value>, key: &'static str) -> Result<Option<u64>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| Error::Malformed {
            what: key,
            detail: format!("expected a non-negative integer, got {v}"),
        }),
    }
}

fn optional_identifier(map: &Map<String, Value>, key: &str) -> Result<Option<String>, Error> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            check_identifier(s)?;
            Ok(Some(s.clone()))
        }
        Some(other) => Err(Error::Malformed {
            what: "alias",
            detail: format!("expected a string, got {other}"),
        }),
    }
}

/// Refuses keys outside `known`: a misspelt key (`"join_typ"`) silently ignored would change the
/// query's meaning without a word.
fn reject_unknown_keys(
    what: &'static str,
    map: &Map<String, Value>,
    known: &[&str],
) -> Result<(), Error> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(Error::Malformed { what, detail: format!("unknown key {key:?}") }),
        None => Ok(()),
    }
}

fn malformed(what: &'static str, map: &Map<String, Value>) -> Error {
    Error::Malformed { what, detail: format!("unexpected {}", Value::Object(map.clone())) }
}

macro_rules! serde_via_json {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.to_json().map_err(serde::ser::Error::custom)?.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                <$ty>::from_json(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_json!(Select);
serde_via_json!(Expr);
