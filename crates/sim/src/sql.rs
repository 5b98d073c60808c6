//! Turns a parsed JSONSQL [`Select`] into one SQLite statement with bound parameters, refusing
//! what a PostgreSQL-backed portal refuses.
//!
//! The safety argument is local to this file: every identifier that reaches the SQL text is a
//! catalog table or column name, or an alias that passed `is_identifier` (letters, digits, `_`) and
//! is written double-quoted; every value is a `?` parameter; every function name comes from a
//! whitelist. Nothing the client sends is ever formatted into SQL as it came.
//!
//! The answers follow PostgreSQL, not SQLite, wherever the two differ silently (the real portal
//! runs on PostgreSQL; `docs/jsonsql-dialect.md` lists every decision): NULLs sort last ascending
//! and first descending; every operator and function is type-checked against the catalog's column
//! types with PostgreSQL's rules (a quoted literal is of unknown type and takes the type of the
//! other side, parsed by that type's input syntax; a number or boolean has its own type);
//! unquoted identifiers fold to lower case; DISTINCT and GROUP BY refuse what PostgreSQL refuses.

use std::borrow::Cow;
use std::fmt::Write as _;

use iptvportal_catalog::{ColumnType, Table};
use iptvportal_query::{
    ColumnRef, CompareOp, Direction, Expr, FromClause, Function, InList, JoinKind, Operand, Scalar,
    Select,
};
use rusqlite::types::Value;

use crate::{Collation, OffsetModel};

/// A select the simulator refuses, and why: answered with [`Refusal::code`] and this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidSelect(pub(crate) String, pub(crate) Refusal);

/// Who refuses a select on a real portal, which decides its JSON-RPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request itself is malformed or names what does not exist: -32602, the simulator's
    /// validation.
    Params,
    /// The request is well formed but its database refuses it (types, input syntax, grouping):
    /// -32000, the code of every database error, with the wording PostgreSQL uses.
    Database,
}

/// The SQLite collation registered for [`Collation::Unicode`] (see `db.rs`).
pub(crate) const UNICODE_COLLATION: &str = "unicode";

/// The functions a select may call, in the order the error message lists them.
const FUNCTIONS: &[&str] = &[
    "count",
    "min",
    "max",
    "sum",
    "avg",
    "distinct",
    "lower",
    "upper",
    "length",
    "coalesce",
    "concat",
    "regexp_replace",
    "date",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
];

/// A compiled select: the SQL, its parameters in order, the catalog type of each result column
/// (`None` where the value is passed through as SQLite computes it, e.g. `count`), and how many
/// leading rows the executor reads and discards before it writes any.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) sql: String,
    pub(crate) params: Vec<Value>,
    pub(crate) types: Vec<Option<ColumnType>>,
    /// The OFFSET of the outermost select when [`OffsetModel::Materialize`] took it out of the
    /// SQL; 0 otherwise.
    pub(crate) skip: u64,
}

/// Compiles a select against the catalog, paying for its OFFSET as `offset` says and ordering
/// text by `collation`.
pub(crate) fn compile(
    select: &Select,
    offset: OffsetModel,
    collation: Collation,
) -> Result<Compiled, InvalidSelect> {
    // PostgreSQL folds unquoted identifiers to lower case before it looks them up, so `"ID"` is
    // the column `id`; folding a copy first keeps every later comparison exact.
    let mut select = select.clone();
    fold_select(&mut select);
    let mut c = Compiler {
        sql: String::new(),
        params: Vec::new(),
        scopes: Vec::new(),
        offset,
        collation,
        skip: 0,
        names: Vec::new(),
    };
    let types = c.select(&select)?;
    Ok(Compiled {
        sql: c.sql,
        params: c.params,
        types: types.into_iter().map(|t| t.out).collect(),
        skip: c.skip,
    })
}

fn invalid(message: impl Into<String>) -> InvalidSelect {
    InvalidSelect(message.into(), Refusal::Params)
}

/// A refusal worded as PostgreSQL words it.
fn refused(message: impl Into<String>) -> InvalidSelect {
    InvalidSelect(message.into(), Refusal::Database)
}

fn fold(name: &mut str) {
    name.make_ascii_lowercase();
}

fn fold_column(c: &mut ColumnRef) {
    fold(&mut c.name);
    if let Some(t) = &mut c.table {
        fold(t);
    }
}

fn fold_operand(o: &mut Operand) {
    match o {
        Operand::Column(c) => fold_column(c),
        Operand::Function(f) => {
            fold(&mut f.name);
            if let Some(a) = &mut f.alias {
                fold(a);
            }
            f.args.iter_mut().for_each(fold_operand);
        }
        Operand::Select(s) => fold_select(s),
        Operand::Aliased { operand, alias } => {
            fold(alias);
            fold_operand(operand);
        }
        Operand::Star | Operand::Literal(_) => {}
    }
}

fn fold_expr(e: &mut Expr) {
    match e {
        Expr::Compare { left, right, .. } | Expr::Is { left, right, .. } => {
            fold_operand(left);
            fold_operand(right);
        }
        Expr::In { left, list } => {
            fold_operand(left);
            match list {
                InList::Values(values) => values.iter_mut().for_each(fold_operand),
                InList::Select(s) => fold_select(s),
            }
        }
        Expr::And(items) | Expr::Or(items) => items.iter_mut().for_each(fold_expr),
        Expr::Not(inner) => fold_expr(inner),
    }
}

fn fold_select(s: &mut Select) {
    s.data.iter_mut().for_each(fold_operand);
    let tables =
        std::iter::once(&mut s.from.table).chain(s.from.joins.iter_mut().map(|j| &mut j.table));
    for t in tables {
        fold(&mut t.name);
        if let Some(a) = &mut t.alias {
            fold(a);
        }
    }
    for j in &mut s.from.joins {
        if let Some(on) = &mut j.on {
            fold_expr(on);
        }
    }
    if let Some(w) = &mut s.where_ {
        fold_expr(w);
    }
    s.group_by.iter_mut().for_each(fold_column);
    if let Some(h) = &mut s.having {
        fold_expr(h);
    }
    if let Some(sub) = &mut s.from_select {
        fold_select(sub);
    }
    for o in &mut s.order_by {
        fold_column(&mut o.column);
    }
}

/// The PostgreSQL type of an expression, as the portal's database would see it. The catalog's
/// `float` (money: `billing`, `cost`) is taken as `numeric`, the usual type for money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pg {
    Integer,
    /// `count(*)` and `sum` of integers.
    BigInt,
    Numeric,
    Boolean,
    Text,
    Timestamp,
    /// What `date(timestamp)` returns; stored as `YYYY-MM-DD` text.
    Date,
    /// A quoted literal or `null`: PostgreSQL gives it the type the other side needs.
    Unknown,
}

impl Pg {
    fn of(ty: ColumnType) -> Pg {
        match ty {
            ColumnType::Integer => Pg::Integer,
            ColumnType::Float => Pg::Numeric,
            ColumnType::Boolean => Pg::Boolean,
            ColumnType::Timestamp => Pg::Timestamp,
            // Text, and any type the catalog grows: compared as text until it is taught here.
            _ => Pg::Text,
        }
    }

    fn of_scalar(s: &Scalar) -> Pg {
        match s {
            Scalar::Null | Scalar::String(_) => Pg::Unknown,
            Scalar::Bool(_) => Pg::Boolean,
            Scalar::Int(_) => Pg::Integer,
            Scalar::Float(_) => Pg::Numeric,
        }
    }

    /// The name PostgreSQL's messages use.
    const fn name(self) -> &'static str {
        match self {
            Pg::Integer => "integer",
            Pg::BigInt => "bigint",
            Pg::Numeric => "numeric",
            Pg::Boolean => "boolean",
            Pg::Text => "text",
            Pg::Timestamp => "timestamp without time zone",
            Pg::Date => "date",
            Pg::Unknown => "unknown",
        }
    }

    const fn is_numeric(self) -> bool {
        matches!(self, Pg::Integer | Pg::BigInt | Pg::Numeric)
    }

    /// Whether `=`, `<` and the rest exist between the two (after an unknown side took the
    /// other's type): the same type, or two numbers (PostgreSQL casts integers to numeric
    /// implicitly). Text never meets a number, boolean or timestamp without an explicit cast.
    fn comparable(self, other: Pg) -> bool {
        self == other
            || self == Pg::Unknown
            || other == Pg::Unknown
            || (self.is_numeric() && other.is_numeric())
    }

    /// The common type of `coalesce`'s arguments: the wider of two numbers, else the same type.
    fn unify(self, other: Pg) -> Option<Pg> {
        match (self, other) {
            (a, b) if a == b => Some(a),
            (Pg::Unknown, b) => Some(b),
            (a, Pg::Unknown) => Some(a),
            (a, b) if a.is_numeric() && b.is_numeric() => {
                Some(if a == Pg::Numeric || b == Pg::Numeric { Pg::Numeric } else { Pg::BigInt })
            }
            _ => None,
        }
    }
}

/// What compiling an expression learned about it: its PostgreSQL type and the catalog type its
/// values are written back with (`None`: as SQLite computed them).
#[derive(Debug, Clone, Copy)]
struct Typed {
    pg: Pg,
    out: Option<ColumnType>,
    /// Whether it can never be NULL: only `count` is known to be so here; a NULL-free column
    /// can still be NULL under a left join or in an empty `sum`.
    never_null: bool,
}

impl Typed {
    const fn new(pg: Pg, out: Option<ColumnType>) -> Typed {
        Typed { pg, out, never_null: false }
    }
}

/// A quoted literal read by the input function of `to`, as PostgreSQL does when the literal
/// meets a column of that type; the value bound is the stored form of the result.
fn coerce(s: &str, to: Pg) -> Result<(Value, Pg), InvalidSelect> {
    let syntax = || refused(format!("invalid input syntax for type {}: {s:?}", to.name()));
    Ok(match to {
        Pg::Integer | Pg::BigInt => {
            let v: i64 = s.trim().parse().map_err(|_| syntax())?;
            if to == Pg::Integer && i32::try_from(v).is_err() {
                return Err(refused(format!("value {s:?} is out of range for type integer")));
            }
            (Value::Integer(v), to)
        }
        Pg::Numeric => {
            let t = s.trim();
            // Rust also reads "inf" and "nan", which `numeric` spells differently; digits only.
            if !t.bytes().any(|b| b.is_ascii_digit())
                || t.bytes().any(|b| !(b.is_ascii_digit() || b"+-.eE".contains(&b)))
            {
                return Err(syntax());
            }
            (Value::Real(t.parse().map_err(|_| syntax())?), to)
        }
        Pg::Boolean => (Value::Integer(i64::from(parse_bool(s).ok_or_else(syntax)?)), to),
        Pg::Timestamp => (Value::Text(parse_timestamp(s)?), to),
        // A date reads like a timestamp and keeps only its date (PostgreSQL's `date_in` also
        // accepts and drops a time of day).
        Pg::Date => {
            let t = parse_timestamp(s)
                .map_err(|_| refused(format!("invalid input syntax for type date: {s:?}")))?;
            (Value::Text(t[..10].to_owned()), to)
        }
        Pg::Text | Pg::Unknown => (Value::Text(s.to_owned()), Pg::Text),
    })
}

/// PostgreSQL's `boolin`: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, any case, surrounding
/// spaces ignored, and any unambiguous prefix of the words (`t`, `fa`, `y`; `o` is ambiguous).
fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim().to_ascii_lowercase();
    let prefix = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    if prefix("true", 1) || prefix("yes", 1) || prefix("on", 2) || t == "1" {
        Some(true)
    } else if prefix("false", 1) || prefix("no", 1) || prefix("off", 2) || t == "0" {
        Some(false)
    } else {
        None
    }
}

/// Reads a `timestamp` literal in the ISO 8601 forms PostgreSQL reads, and returns the text the
/// simulator stores (`YYYY-MM-DD HH:MM:SS`, a fraction only when it is not zero), which orders
/// correctly as text against the stored values:
///
/// - `2019-03-03`, `2019-03-03 06:53`, `2019-03-03 06:53:06`, `2019-03-03T06:53:06.25`;
/// - a zone (`Z`, `+03`, `+03:00`, `-0500`) is accepted and ignored, as PostgreSQL ignores it for
///   `timestamp without time zone`.
///
/// The words PostgreSQL also reads (`now`, `epoch`, `January 8, 1999`) are refused: a portal's
/// clients send ISO dates, and `now` would make answers depend on the clock.
fn parse_timestamp(s: &str) -> Result<String, InvalidSelect> {
    let syntax = || refused(format!("invalid input syntax for type timestamp: {s:?}"));
    let range = || refused(format!("date/time field value out of range: {s:?}"));
    let t = s.trim();
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        part.iter()
            .try_fold(0_i64, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(syntax());
    }
    let (year, month, day) = (
        digits(0..4).ok_or_else(syntax)?,
        digits(5..7).ok_or_else(syntax)?,
        digits(8..10).ok_or_else(syntax)?,
    );
    let (mut hour, mut minute, mut second, mut fraction) = (0, 0, 0, "");
    let mut rest = &t[10..];
    if let Some(time) = rest.strip_prefix(['T', 't', ' ']) {
        let tb = time.as_bytes();
        let two = |i: usize| -> Option<i64> {
            let p = tb.get(i..i + 2)?;
            p.iter().try_fold(0_i64, |acc, &d| {
                d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
            })
        };
        hour = two(0).ok_or_else(syntax)?;
        if tb.get(2) != Some(&b':') {
            return Err(syntax());
        }
        minute = two(3).ok_or_else(syntax)?;
        let mut used = 5;
        if tb.get(5) == Some(&b':') {
            second = two(6).ok_or_else(syntax)?;
            used = 8;
            if tb.get(8) == Some(&b'.') {
                let n = tb[9..].iter().take_while(|d| d.is_ascii_digit()).count();
                if n == 0 {
                    return Err(syntax());
                }
                // PostgreSQL keeps microseconds, rounding what is finer; six digits are kept
                // here and the rest dropped (the generated data has whole seconds).
                fraction = time[9..9 + n.min(6)].trim_end_matches('0');
                used = 9 + n;
            }
        }
        rest = &time[used..];
    }
    let zone = rest.trim_start();
    let zone_ok = zone.is_empty()
        || zone.eq_ignore_ascii_case("z")
        || zone.strip_prefix(['+', '-']).is_some_and(|z| {
            let z = z.replace(':', "");
            matches!(z.len(), 2 | 4) && z.bytes().all(|d| d.is_ascii_digit())
        });
    if !zone_ok {
        return Err(syntax());
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > iptvportal_catalog::time::days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(range());
    }
    let mut text = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
    if !fraction.is_empty() {
        text.push('.');
        text.push_str(fraction);
    }
    Ok(text)
}

/// A column of a visible table: a catalog column, or an output column of a sub-select in `from`.
#[derive(Debug, Clone)]
struct Col {
    name: Cow<'static, str>,
    ty: Typed,
    nullable: bool,
}

/// One table visible in a select: its name, its columns, its primary key, the name that
/// qualifies its columns, and whether a left join makes every column of it nullable. A sub-select
/// in `from` (a derived table) carries its compiled SQL and parameters, and has no primary key.
struct Visible {
    name: String,
    columns: Vec<Col>,
    id_column: Option<&'static str>,
    qualifier: String,
    outer: bool,
    derived: Option<(String, Vec<Value>)>,
}

impl Visible {
    fn catalog(table: &'static Table, qualifier: String, outer: bool) -> Visible {
        let columns = table
            .columns
            .iter()
            .map(|c| Col {
                name: Cow::Borrowed(c.name),
                ty: Typed::new(Pg::of(c.ty), Some(c.ty)),
                nullable: c.nullable,
            })
            .collect();
        Visible {
            name: table.name.to_owned(),
            columns,
            id_column: table.id_column,
            qualifier,
            outer,
            derived: None,
        }
    }

    /// The column `name`; a derived table may have two of a name, which is ambiguous.
    fn column(&self, name: &str) -> Result<Option<&Col>, InvalidSelect> {
        let mut found = self.columns.iter().filter(|c| c.name == name);
        match (found.next(), found.next()) {
            (Some(_), Some(_)) => Err(refused(format!("column reference {name:?} is ambiguous"))),
            (one, _) => Ok(one),
        }
    }
}

/// A column resolved to its table.
struct Resolved {
    sql: String,
    ty: Typed,
    nullable: bool,
    /// Index into the compiler's scopes of the select whose table it is.
    scope: usize,
    id_column: Option<&'static str>,
    qualifier: String,
    name: String,
}

/// A column used outside any aggregate function in `data` or `order_by`, for the GROUP BY rule.
struct Loose {
    /// Its SQL, `"t"."col"`.
    sql: String,
    /// How PostgreSQL's message names it, `t.col`.
    shown: String,
    /// The primary key of its table, if it has one.
    id_column: Option<&'static str>,
    qualifier: String,
    /// The `data` item it stands in (`None` in `order_by`).
    item: Option<usize>,
}

/// The tables of one select level, the aliases its `data` declares (usable in `order_by` and
/// `group_by`), and what the GROUP BY and DISTINCT rules need to know about it.
struct Scope {
    tables: Vec<Visible>,
    /// Name, type, whether it is never NULL, and the `data` item it names.
    aliases: Vec<(String, Typed, usize)>,
    /// Nesting of aggregate calls being compiled at this level.
    aggregate_depth: usize,
    /// Whether `data` calls an aggregate: then it is a grouped select even without `group_by`.
    aggregates: bool,
    /// The `data` item being compiled, while loose columns are collected.
    item: Option<usize>,
    collecting: bool,
    /// The clause being compiled when it is one where aggregates are refused.
    filtering: Option<&'static str>,
    loose: Vec<Loose>,
}

struct Compiler {
    sql: String,
    params: Vec<Value>,
    /// Innermost last: a sub-select sees its own tables first, then the enclosing ones.
    scopes: Vec<Scope>,
    offset: OffsetModel,
    collation: Collation,
    /// See [`Compiled::skip`].
    skip: u64,
    /// The output column names of the select compiled last (for a derived table's columns).
    names: Vec<String>,
}

fn bind(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        // Booleans are stored as 0/1.
        Scalar::Bool(b) => Value::Integer(i64::from(*b)),
        Scalar::Int(i) => Value::Integer(*i),
        Scalar::Float(f) => Value::Real(*f),
        Scalar::String(s) => Value::Text(s.clone()),
    }
}

/// The symbol PostgreSQL's "operator does not exist" message shows for `op`.
const fn symbol(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Neq => "<>",
        CompareOp::Gt => ">",
        CompareOp::Gte => ">=",
        CompareOp::Lt => "<",
        CompareOp::Lte => "<=",
        CompareOp::Like => "~~",
        _ => "~~*",
    }
}

fn no_operator(left: Pg, op: &str, right: Pg) -> InvalidSelect {
    refused(format!("operator does not exist: {} {op} {}", left.name(), right.name()))
}

fn no_function(name: &str, arg: Pg) -> InvalidSelect {
    refused(format!("function {name}({}) does not exist", arg.name()))
}

impl Compiler {
    fn param(&mut self, value: Value) {
        self.params.push(value);
        self.sql.push('?');
    }

    /// ` COLLATE unicode` after a text expression that is ordered, when that collation is on.
    fn collate(&mut self, pg: Pg) {
        if pg == Pg::Text && self.collation == Collation::Unicode {
            let _ = write!(self.sql, " COLLATE {UNICODE_COLLATION}");
        }
    }

    fn select(&mut self, select: &Select) -> Result<Vec<Typed>, InvalidSelect> {
        let scope = self.scope(select)?;
        self.scopes.push(scope);
        let result = self.select_in_scope(select);
        if result.is_ok() {
            self.names = self.output_names(select);
        }
        self.scopes.pop();
        result
    }

    /// The names PostgreSQL gives the output columns of `select` (compiled in the innermost
    /// scope): a column's name, the alias, a function's name, else `?column?`.
    fn output_names(&self, select: &Select) -> Vec<String> {
        let scope = self.scopes.last().expect("scope pushed");
        let mut names = Vec::new();
        for (i, item) in select.data.iter().enumerate() {
            match item {
                Operand::Function(f) if i == 0 && f.name == "distinct" => {
                    names.extend(f.args.iter().map(|a| match a {
                        Operand::Column(c) => c.name.clone(),
                        _ => "?column?".to_owned(),
                    }));
                    if let (Some(a), Some(last)) = (&f.alias, names.last_mut()) {
                        last.clone_from(a);
                    }
                }
                Operand::Star => names.extend(
                    scope.tables.iter().flat_map(|v| v.columns.iter().map(|c| c.name.to_string())),
                ),
                Operand::Column(c) => names.push(c.name.clone()),
                Operand::Aliased { alias, .. } => names.push(alias.clone()),
                Operand::Function(f) => {
                    names.push(f.alias.clone().unwrap_or_else(|| f.name.clone()));
                }
                Operand::Literal(_) | Operand::Select(_) => names.push("?column?".to_owned()),
            }
        }
        names
    }

    fn scope(&self, select: &Select) -> Result<Scope, InvalidSelect> {
        let from = &select.from;
        let mut tables: Vec<Visible> = Vec::new();
        let refs = std::iter::once((&from.table, false))
            .chain(from.joins.iter().map(|j| (&j.table, j.kind == JoinKind::Left)));
        for (i, (r, outer)) in refs.enumerate() {
            let qualifier = r.alias.clone().unwrap_or_else(|| r.name.clone());
            if tables.iter().any(|v| v.qualifier == qualifier) {
                return Err(invalid(format!(
                    "table or alias {qualifier:?} appears twice in from: give one an alias"
                )));
            }
            let visible = match &select.from_select {
                Some(sub) if i == 0 => self.derived(sub, qualifier)?,
                _ => {
                    let table = iptvportal_catalog::table(&r.name)
                        .ok_or_else(|| invalid(format!("unknown table {:?}", r.name)))?;
                    Visible::catalog(table, qualifier, outer)
                }
            };
            tables.push(visible);
        }
        Ok(Scope {
            tables,
            aliases: Vec::new(),
            aggregate_depth: 0,
            aggregates: false,
            item: None,
            collecting: false,
            filtering: None,
            loose: Vec::new(),
        })
    }

    /// A sub-select in `from`, compiled on its own: it cannot see the enclosing select's tables
    /// (no LATERAL), and its OFFSET is SQLite's, as every inner select's is. Its output columns
    /// are named as PostgreSQL names them: the column, the alias, the function's name, or
    /// `?column?`.
    fn derived(&self, sub: &Select, name: String) -> Result<Visible, InvalidSelect> {
        let mut c = Compiler {
            sql: String::new(),
            params: Vec::new(),
            scopes: Vec::new(),
            offset: OffsetModel::Native,
            collation: self.collation,
            skip: 0,
            names: Vec::new(),
        };
        let types = c.select(sub)?;
        let columns = c
            .names
            .into_iter()
            .zip(types)
            .map(|(n, ty)| Col { name: Cow::Owned(n), ty, nullable: !ty.never_null })
            .collect();
        Ok(Visible {
            name: name.clone(),
            columns,
            id_column: None,
            qualifier: name,
            outer: false,
            derived: Some((c.sql, c.params)),
        })
    }

    fn current(&mut self) -> &mut Scope {
        self.scopes.last_mut().expect("a select pushes its scope before compiling its parts")
    }

    fn select_in_scope(&mut self, select: &Select) -> Result<Vec<Typed>, InvalidSelect> {
        self.sql.push_str("SELECT ");
        // `{"function":"distinct","args":[...]}` as the first data item is `SELECT DISTINCT ...`.
        let (leading_distinct, data) = match select.data.split_first() {
            Some((Operand::Function(f), rest)) if f.name == "distinct" => {
                if f.args.is_empty() {
                    return Err(invalid("function \"distinct\" takes at least 1 argument"));
                }
                (Some(f), rest)
            }
            _ => (None, select.data.as_slice()),
        };
        let distinct = select.distinct || leading_distinct.is_some();
        if distinct {
            self.sql.push_str("DISTINCT ");
        }
        let mut types = Vec::new();
        // The SQL of every output column, for the DISTINCT and GROUP BY rules.
        let mut items: Vec<String> = Vec::new();
        self.current().collecting = true;
        if let Some(f) = leading_distinct {
            for arg in &f.args {
                if !items.is_empty() {
                    self.sql.push_str(", ");
                }
                self.current().item = Some(items.len());
                let start = self.sql.len();
                types.push(self.operand(arg, None)?);
                items.push(self.sql[start..].to_owned());
            }
            let last = types.last().copied().unwrap_or(Typed::new(Pg::Unknown, None));
            self.alias(f.alias.as_deref(), last, items.len() - 1)?;
        }
        for item in data {
            if !items.is_empty() {
                self.sql.push_str(", ");
            }
            self.current().item = Some(items.len());
            match item {
                Operand::Star => {
                    for (sql, t) in self.star() {
                        types.push(t);
                        items.push(sql);
                    }
                }
                Operand::Function(f) => {
                    let start = self.sql.len();
                    types.push(self.function(f)?);
                    items.push(self.sql[start..].to_owned());
                    let last = types.last().copied().unwrap_or(Typed::new(Pg::Unknown, None));
                    self.alias(f.alias.as_deref(), last, items.len() - 1)?;
                }
                Operand::Aliased { operand, alias } => {
                    let start = self.sql.len();
                    let t = self.operand(operand, None)?;
                    types.push(t);
                    items.push(self.sql[start..].to_owned());
                    self.alias(Some(alias), t, items.len() - 1)?;
                }
                other => {
                    let start = self.sql.len();
                    types.push(self.operand(other, None)?);
                    items.push(self.sql[start..].to_owned());
                }
            }
        }
        self.current().collecting = false;
        self.current().item = None;
        self.from(&select.from)?;
        if let Some(w) = &select.where_ {
            self.sql.push_str(" WHERE ");
            self.current().filtering = Some("WHERE");
            self.expr(w)?;
            self.current().filtering = None;
        }
        let mut groups: Vec<String> = Vec::new();
        if !select.group_by.is_empty() {
            self.sql.push_str(" GROUP BY ");
            for (i, c) in select.group_by.iter().enumerate() {
                if i > 0 {
                    self.sql.push_str(", ");
                }
                let (sql, _) = self.sort_key(c, false)?;
                groups.push(sql);
            }
        }
        if let Some(h) = &select.having {
            // Aggregates are what HAVING is for; its bare columns must be grouped, as in `data`.
            self.sql.push_str(" HAVING ");
            self.current().collecting = true;
            self.current().aggregates = true;
            self.expr(h)?;
            self.current().collecting = false;
        }
        self.order_by(&select.order_by, distinct, &items)?;
        self.check_grouping(&groups, &items)?;
        self.limit_offset(select.limit, select.offset)?;
        Ok(types)
    }

    /// Writes `order_by`, in PostgreSQL's NULL order, refusing under DISTINCT a key that is not
    /// an output column (`items`).
    fn order_by(
        &mut self,
        order_by: &[iptvportal_query::OrderBy],
        distinct: bool,
        items: &[String],
    ) -> Result<(), InvalidSelect> {
        if order_by.is_empty() {
            return Ok(());
        }
        self.sql.push_str(" ORDER BY ");
        self.current().collecting = true;
        for (i, o) in order_by.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            let (key, nullable) = self.sort_key(&o.column, true)?;
            if distinct && !items.contains(&key) && !self.is_alias(&o.column) {
                return Err(refused(
                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                ));
            }
            // PostgreSQL sorts NULL as larger than every value: last ascending, first
            // descending; SQLite does the opposite. Written only where a NULL can occur, so
            // that `ORDER BY id` stays the plain rowid walk it was.
            match o.direction {
                Some(Direction::Desc) => {
                    self.sql.push_str(" DESC");
                    if nullable {
                        self.sql.push_str(" NULLS FIRST");
                    }
                }
                direction => {
                    if direction == Some(Direction::Asc) {
                        self.sql.push_str(" ASC");
                    }
                    if nullable {
                        self.sql.push_str(" NULLS LAST");
                    }
                }
            }
        }
        self.current().collecting = false;
        Ok(())
    }

    fn is_alias(&self, c: &ColumnRef) -> bool {
        c.table.is_none()
            && self.scopes.last().is_some_and(|s| s.aliases.iter().any(|(a, _, _)| a == &c.name))
    }

    /// PostgreSQL's rule for a grouped select (one with `group_by`, or an aggregate in `data`):
    /// a column outside every aggregate must be grouped, or stand in a `data` item that is
    /// grouped as a whole, or belong to a table whose primary key (the catalog's id column) is
    /// grouped: then it is functionally dependent on it, which PostgreSQL accepts since 9.1.
    fn check_grouping(&mut self, groups: &[String], items: &[String]) -> Result<(), InvalidSelect> {
        let scope = self.scopes.last().expect("scope pushed");
        if groups.is_empty() && !scope.aggregates {
            return Ok(());
        }
        let grouped_items: Vec<usize> = (0..items.len())
            .filter(|&i| {
                groups.contains(&items[i])
                    || scope.aliases.iter().any(|(a, _, item)| {
                        *item == i && groups.iter().any(|g| g == &format!("\"{a}\""))
                    })
            })
            .collect();
        for l in &scope.loose {
            if groups.contains(&l.sql) || l.item.is_some_and(|i| grouped_items.contains(&i)) {
                continue;
            }
            let key_grouped = l
                .id_column
                .is_some_and(|id| groups.contains(&format!("\"{}\".\"{id}\"", l.qualifier)));
            if !key_grouped {
                return Err(refused(format!(
                    "column {:?} must appear in the GROUP BY clause or be used in an aggregate function",
                    l.shown
                )));
            }
        }
        Ok(())
    }

    /// Writes the LIMIT and OFFSET of the select whose scope is innermost. Under
    /// [`OffsetModel::Materialize`] the outermost select's OFFSET `k` leaves the SQL: the LIMIT
    /// grows by `k` and [`Compiled::skip`] tells the executor to read `k` rows and discard them,
    /// which returns the same rows in the same order (SQLite's sorter keeps `limit + offset`
    /// rows either way, so even ties under a non-unique ORDER BY come out alike).
    fn limit_offset(
        &mut self,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<(), InvalidSelect> {
        let to_i64 = |what: &str, v: u64| {
            i64::try_from(v).map_err(|_| invalid(format!("{what} {v} is out of range")))
        };
        // Both are checked before anything is written, so that both models refuse the same
        // selects with the same message.
        let limit = limit.map(|l| to_i64("limit", l)).transpose()?;
        let offset = offset.map(|o| to_i64("offset", o)).transpose()?;
        let outermost = self.scopes.len() == 1;
        match (limit, offset) {
            // PostgreSQL's Limit node with a count of 0 returns at once, without running its
            // input, so there is nothing to skip.
            (limit, Some(k))
                if k > 0
                    && limit != Some(0)
                    && outermost
                    && self.offset == OffsetModel::Materialize =>
            {
                // Without a limit, or when `limit + offset` overflows (more rows than a table can
                // hold), every row after the skipped ones is wanted: no LIMIT at all.
                if let Some(total) = limit.and_then(|l| l.checked_add(k)) {
                    self.sql.push_str(" LIMIT ");
                    self.param(Value::Integer(total));
                }
                self.skip = k.cast_unsigned();
            }
            (None, None) => {}
            (limit, offset) => {
                // SQLite needs a LIMIT before an OFFSET; -1 means no limit.
                self.sql.push_str(" LIMIT ");
                self.param(Value::Integer(limit.unwrap_or(-1)));
                if let Some(offset) = offset {
                    self.sql.push_str(" OFFSET ");
                    self.param(Value::Integer(offset));
                }
            }
        }
        Ok(())
    }

    fn alias(&mut self, alias: Option<&str>, t: Typed, item: usize) -> Result<(), InvalidSelect> {
        if let Some(a) = alias {
            // The AST only admits identifiers here; checked again because this reaches SQL text.
            if !iptvportal_query::is_identifier(a) {
                return Err(invalid(format!("invalid alias {a:?}")));
            }
            let _ = write!(self.sql, " AS \"{a}\"");
            self.current().aliases.push((a.to_owned(), t, item));
        }
        Ok(())
    }

    /// Writes `*` as every column of every table, and returns each column's SQL and type.
    fn star(&mut self) -> Vec<(String, Typed)> {
        let scope = self.scopes.last_mut().expect("scope pushed");
        // Each column `*` stands for is an output column of its own, so for the GROUP BY rule
        // each is a data item of its own, numbered from the item `*` starts at.
        let first = scope.item.unwrap_or(0);
        let collect = scope.collecting && scope.aggregate_depth == 0;
        let mut parts = Vec::new();
        for v in &scope.tables {
            for c in &v.columns {
                let sql = format!("\"{}\".\"{}\"", v.qualifier, c.name);
                if collect {
                    scope.loose.push(Loose {
                        sql: sql.clone(),
                        shown: format!("{}.{}", v.qualifier, c.name),
                        id_column: v.id_column,
                        qualifier: v.qualifier.clone(),
                        item: Some(first + parts.len()),
                    });
                }
                parts.push((sql, c.ty));
            }
        }
        let sql = parts.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(", ");
        self.sql.push_str(&sql);
        parts
    }

    fn from(&mut self, from: &FromClause) -> Result<(), InvalidSelect> {
        let table_sql = |name: &str, alias: Option<&String>| match alias {
            None => format!("\"{name}\""),
            Some(a) => format!("\"{name}\" AS \"{a}\""),
        };
        let derived =
            self.scopes.last().and_then(|s| s.tables.first()).and_then(|v| v.derived.clone());
        if let Some((sql, params)) = derived {
            // The derived table's parameters come here in the text, after those of `data`.
            let _ = write!(self.sql, " FROM ({sql}) AS \"{}\"", from.table.name);
            self.params.extend(params);
        } else {
            let _ = write!(
                self.sql,
                " FROM {}",
                table_sql(&from.table.name, from.table.alias.as_ref())
            );
        }
        for j in &from.joins {
            let kind = match j.kind {
                JoinKind::Left => "LEFT JOIN",
                _ => "JOIN",
            };
            let _ =
                write!(self.sql, " {kind} {}", table_sql(&j.table.name, j.table.alias.as_ref()));
            match &j.on {
                Some(on) => {
                    self.sql.push_str(" ON ");
                    self.current().filtering = Some("JOIN conditions");
                    self.expr(on)?;
                    self.current().filtering = None;
                }
                None if j.kind == JoinKind::Left => {
                    return Err(invalid(format!(
                        "left join of {:?} needs an \"on\" condition",
                        j.table.name
                    )));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Resolves a column to its qualified SQL name, type and table.
    fn column(&self, c: &ColumnRef) -> Result<Resolved, InvalidSelect> {
        let resolved = |scope: usize, v: &Visible, col: &Col| Resolved {
            sql: format!("\"{}\".\"{}\"", v.qualifier, col.name),
            ty: col.ty,
            nullable: col.nullable || v.outer,
            scope,
            id_column: v.id_column,
            qualifier: v.qualifier.clone(),
            name: col.name.clone().into_owned(),
        };
        if let Some(q) = &c.table {
            for (i, scope) in self.scopes.iter().enumerate().rev() {
                if let Some(v) = scope.tables.iter().find(|v| &v.qualifier == q) {
                    let col = v.column(&c.name)?.ok_or_else(|| {
                        invalid(format!("unknown column {:?} in table {:?}", c.name, v.name))
                    })?;
                    return Ok(resolved(i, v, col));
                }
            }
            return Err(invalid(format!("unknown table or alias {q:?} in column {c}")));
        }
        for (i, scope) in self.scopes.iter().enumerate().rev() {
            let mut found = Vec::new();
            for v in &scope.tables {
                if let Some(col) = v.column(&c.name)? {
                    found.push((v, col));
                }
            }
            match found.as_slice() {
                [(v, col)] => return Ok(resolved(i, v, col)),
                [_, _, ..] => {
                    return Err(invalid(format!(
                        "ambiguous column {:?}: qualify it with a table or alias",
                        c.name
                    )));
                }
                [] => {}
            }
        }
        let scope = self.scopes.last().expect("scope pushed");
        Err(match scope.tables.as_slice() {
            [one] => invalid(format!("unknown column {:?} in table {:?}", c.name, one.name)),
            many => invalid(format!(
                "unknown column {:?} in tables {}",
                c.name,
                many.iter().map(|v| format!("{:?}", v.name)).collect::<Vec<_>>().join(", ")
            )),
        })
    }

    /// Resolves a column, writes it, and notes it for the GROUP BY rule when it stands outside
    /// every aggregate of this select's `data` or `order_by`.
    fn write_column(&mut self, c: &ColumnRef) -> Result<Resolved, InvalidSelect> {
        let r = self.column(c)?;
        self.sql.push_str(&r.sql);
        let innermost = self.scopes.len() - 1;
        let scope = self.current();
        if r.scope == innermost && scope.collecting && scope.aggregate_depth == 0 {
            let item = scope.item;
            scope.loose.push(Loose {
                sql: r.sql.clone(),
                shown: format!("{}.{}", r.qualifier, r.name),
                id_column: r.id_column,
                qualifier: r.qualifier.clone(),
                item,
            });
        }
        Ok(r)
    }

    /// An `order_by` (`ordered`) or `group_by` key: a `data` alias of this select, or a column.
    /// Returns its SQL and whether it can be NULL.
    fn sort_key(&mut self, c: &ColumnRef, ordered: bool) -> Result<(String, bool), InvalidSelect> {
        let alias = if c.table.is_none() {
            self.scopes
                .last()
                .and_then(|s| s.aliases.iter().find(|(a, _, _)| a == &c.name))
                .map(|(_, t, _)| *t)
        } else {
            None
        };
        if let Some(t) = alias {
            let sql = format!("\"{}\"", c.name);
            self.sql.push_str(&sql);
            if ordered {
                self.collate(t.pg);
            }
            // What an alias names (a `max`, a `coalesce`) may be NULL, unless it is a `count`.
            return Ok((sql, !t.never_null));
        }
        let r = if ordered {
            self.write_column(c)?
        } else {
            let r = self.column(c)?;
            self.sql.push_str(&r.sql);
            r
        };
        if ordered {
            self.collate(r.ty.pg);
        }
        Ok((r.sql, r.nullable))
    }

    /// Writes an operand. A quoted literal takes the type `hint` says the other side has (and is
    /// read by that type's input syntax), as PostgreSQL types an unknown literal.
    fn operand(&mut self, operand: &Operand, hint: Option<Pg>) -> Result<Typed, InvalidSelect> {
        match operand {
            Operand::Star => {
                Err(invalid("\"*\" is only allowed in data and as the argument of count"))
            }
            Operand::Column(c) => {
                let r = self.write_column(c)?;
                Ok(r.ty)
            }
            Operand::Literal(Scalar::String(s)) => match hint {
                Some(to) if to != Pg::Unknown => {
                    let (value, pg) = coerce(s, to)?;
                    self.param(value);
                    Ok(Typed::new(pg, None))
                }
                _ => {
                    self.param(Value::Text(s.clone()));
                    Ok(Typed::new(Pg::Unknown, None))
                }
            },
            Operand::Literal(s) => {
                self.param(bind(s));
                Ok(Typed::new(Pg::of_scalar(s), None))
            }
            Operand::Function(f) => {
                if f.alias.is_some() {
                    return Err(invalid(format!(
                        "function {:?}: \"as\" is only allowed in data",
                        f.name
                    )));
                }
                self.function(f)
            }
            Operand::Select(s) => {
                self.sql.push('(');
                let types = self.select(s)?;
                self.sql.push(')');
                Ok(types.first().copied().unwrap_or(Typed::new(Pg::Unknown, None)))
            }
            Operand::Aliased { alias, .. } => {
                Err(invalid(format!("alias {alias:?}: \"as\" is only allowed in data")))
            }
        }
    }

    /// The type an operand would have, without writing it (for an error message).
    fn peek(&mut self, operand: &Operand) -> Result<Pg, InvalidSelect> {
        let (sql, params) = (self.sql.len(), self.params.len());
        let t = self.operand(operand, None);
        self.sql.truncate(sql);
        self.params.truncate(params);
        Ok(t?.pg)
    }

    /// Compiles the argument of an aggregate: its columns are inside an aggregate.
    fn aggregate_arg(&mut self, arg: &Operand) -> Result<Typed, InvalidSelect> {
        self.current().aggregate_depth += 1;
        let t = self.operand(arg, None);
        self.current().aggregate_depth -= 1;
        t
    }

    /// An aggregate call: refused where PostgreSQL refuses aggregates, typed by its argument.
    fn aggregate(&mut self, name: &str, arg: &Operand) -> Result<Typed, InvalidSelect> {
        if let Some(clause) = self.current().filtering {
            return Err(refused(format!("aggregate functions are not allowed in {clause}")));
        }
        if self.current().aggregate_depth > 0 {
            return Err(refused("aggregate function calls cannot be nested"));
        }
        if self.current().collecting {
            self.current().aggregates = true;
        }
        let _ = write!(self.sql, "{name}(");
        let typed = match arg {
            Operand::Star if name == "count" => {
                self.sql.push('*');
                Typed::new(Pg::Unknown, None)
            }
            Operand::Function(inner) if inner.name.eq_ignore_ascii_case("distinct") => {
                if inner.args.len() != 1 {
                    return Err(invalid(format!(
                        "function \"distinct\" inside {name:?} takes 1 argument, got {}",
                        inner.args.len()
                    )));
                }
                self.sql.push_str("DISTINCT ");
                self.aggregate_arg(&inner.args[0])?
            }
            arg => self.aggregate_arg(arg)?,
        };
        let result = match name {
            "count" => Typed { never_null: true, ..Typed::new(Pg::BigInt, None) },
            // min and max return one of their inputs, so they keep its type. PostgreSQL
            // has no max(boolean) (it has bool_or).
            "min" | "max" if typed.pg == Pg::Boolean => {
                return Err(no_function(name, typed.pg));
            }
            "min" | "max" => {
                self.collate(typed.pg);
                typed
            }
            "sum" if typed.pg == Pg::Integer => Typed::new(Pg::BigInt, None),
            "sum" | "avg"
                if typed.pg == Pg::Integer || typed.pg == Pg::BigInt || typed.pg == Pg::Numeric =>
            {
                Typed::new(Pg::Numeric, None)
            }
            _ => return Err(no_function(name, typed.pg)),
        };
        self.sql.push(')');
        Ok(result)
    }

    /// `concat(a, b, …)`: text of every argument, NULLs skipped. A later plain string that names
    /// a column of the select is that column, not a literal: the public example
    /// `{"concat":["protocol","://","inet_addr"]}` joins two columns around a separator.
    fn concat(&mut self, args: &[Operand]) -> Result<Typed, InvalidSelect> {
        self.sql.push_str("concat(");
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            let named = match arg {
                Operand::Literal(Scalar::String(s)) if i > 0 => {
                    let c = match s.split_once('.') {
                        Some((t, c)) => ColumnRef::qualified(t, c),
                        None => ColumnRef::new(s.as_str()),
                    };
                    c.ok().filter(|c| self.column(c).is_ok()).map(Operand::Column)
                }
                _ => None,
            };
            let arg = named.as_ref().unwrap_or(arg);
            // PostgreSQL writes a boolean as `t`/`f` in text; SQLite stores 1/0.
            let boolean = matches!(arg, Operand::Column(_)) && self.peek(arg)? == Pg::Boolean;
            if boolean {
                self.sql.push_str("CASE ");
                self.operand(arg, None)?;
                self.sql.push_str(" WHEN 1 THEN 't' WHEN 0 THEN 'f' END");
            } else {
                self.operand(arg, None)?;
            }
        }
        self.sql.push(')');
        Ok(Typed::new(Pg::Text, Some(ColumnType::Text)))
    }

    /// `add` and `mul` (n-ary), `sub`, `div` and `mod` (binary): numbers only, as PostgreSQL's
    /// `+ - * / %` on integer and numeric (integer division truncates in both). A literal zero
    /// divisor is refused as PostgreSQL refuses it; SQLite would answer NULL.
    fn arithmetic(&mut self, name: &str, args: &[Operand]) -> Result<Typed, InvalidSelect> {
        let n_ary = matches!(name, "add" | "mul");
        if args.len() < 2 || (!n_ary && args.len() != 2) {
            let expected = if n_ary { "at least 2" } else { "2" };
            return Err(invalid(format!(
                "function {name:?} takes {expected} argument(s), got {}",
                args.len()
            )));
        }
        let symbol = match name {
            "add" => "+",
            "sub" => "-",
            "mul" => "*",
            "div" => "/",
            _ => "%",
        };
        if matches!(name, "div" | "mod") && matches!(&args[1], Operand::Literal(Scalar::Int(0))) {
            return Err(refused("division by zero"));
        }
        self.sql.push('(');
        let mut ty = Pg::Unknown;
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                let _ = write!(self.sql, " {symbol} ");
            }
            let t = self.operand(arg, Some(ty))?;
            if i > 0 && !(ty.is_numeric() && t.pg.is_numeric()) {
                return Err(no_operator(ty, symbol, t.pg));
            }
            ty = if i == 0 { t.pg } else { ty.unify(t.pg).unwrap_or(Pg::Numeric) };
        }
        self.sql.push(')');
        Ok(Typed::new(ty, None))
    }

    fn function(&mut self, f: &Function) -> Result<Typed, InvalidSelect> {
        let name = f.name.to_ascii_lowercase();
        let arity = |ok: bool, expected: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(format!(
                    "function {name:?} takes {expected} argument(s), got {}",
                    f.args.len()
                )))
            }
        };
        match name.as_str() {
            "count" | "min" | "max" | "sum" | "avg" => {
                arity(f.args.len() == 1, "1")?;
                self.aggregate(&name, &f.args[0])
            }
            "lower" | "upper" | "length" => {
                arity(f.args.len() == 1, "1")?;
                // SQLite's own lower/upper are ASCII-only; these are the Unicode ones (see db.rs).
                if name == "length" {
                    self.sql.push_str("length(");
                } else {
                    let _ = write!(self.sql, "unicode_{name}(");
                }
                let arg = self.operand(&f.args[0], Some(Pg::Text))?;
                if !matches!(arg.pg, Pg::Text | Pg::Unknown) {
                    return Err(no_function(&name, arg.pg));
                }
                self.sql.push(')');
                Ok(if name == "length" {
                    Typed::new(Pg::Integer, Some(ColumnType::Integer))
                } else {
                    Typed::new(Pg::Text, Some(ColumnType::Text))
                })
            }
            "coalesce" => {
                arity(f.args.len() >= 2, "at least 2")?;
                self.sql.push_str("coalesce(");
                let mut ty = Typed::new(Pg::Unknown, None);
                for (i, arg) in f.args.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    let t = self.operand(arg, Some(ty.pg))?;
                    let pg = ty.pg.unify(t.pg).ok_or_else(|| {
                        refused(format!(
                            "COALESCE types {} and {} cannot be matched",
                            ty.pg.name(),
                            t.pg.name()
                        ))
                    })?;
                    ty = Typed::new(pg, ty.out.or(t.out));
                }
                self.sql.push(')');
                Ok(ty)
            }
            "concat" => {
                arity(!f.args.is_empty(), "at least 1")?;
                self.concat(&f.args)
            }
            "regexp_replace" => {
                arity((3..=4).contains(&f.args.len()), "3 or 4")?;
                self.sql.push_str("regexp_replace(");
                for (i, arg) in f.args.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    let t = self.operand(arg, Some(Pg::Text))?;
                    if !matches!(t.pg, Pg::Text | Pg::Unknown) {
                        return Err(no_function(&name, t.pg));
                    }
                }
                self.sql.push(')');
                Ok(Typed::new(Pg::Text, Some(ColumnType::Text)))
            }
            "date" => {
                arity(f.args.len() == 1, "1")?;
                // SQLite's date() of `YYYY-MM-DD HH:MM:SS` text is its `YYYY-MM-DD`.
                self.sql.push_str("date(");
                let t = self.operand(&f.args[0], Some(Pg::Timestamp))?;
                if !matches!(t.pg, Pg::Timestamp | Pg::Date | Pg::Unknown) {
                    return Err(no_function(&name, t.pg));
                }
                self.sql.push(')');
                Ok(Typed::new(Pg::Date, Some(ColumnType::Text)))
            }
            "add" | "sub" | "mul" | "div" | "mod" => self.arithmetic(&name, &f.args),
            "distinct" => Err(invalid(
                "function \"distinct\" is only allowed as the first data item or inside count, min, max, sum or avg",
            )),
            _ => Err(invalid(format!(
                "unknown function {:?}: use one of {}",
                f.name,
                FUNCTIONS.join(", ")
            ))),
        }
    }

    /// A comparison, type-checked as PostgreSQL resolves its operator.
    fn compare(
        &mut self,
        op: CompareOp,
        left: &Operand,
        right: &Operand,
    ) -> Result<(), InvalidSelect> {
        if matches!(op, CompareOp::Like | CompareOp::Ilike) {
            let ilike = op == CompareOp::Ilike;
            self.sql.push('(');
            if ilike {
                // Both sides lowered with the Unicode function, then a case-sensitive LIKE:
                // case-insensitive for Cyrillic too, where SQLite's LIKE folds only ASCII.
                self.sql.push_str("unicode_lower(");
            }
            let l = self.operand(left, None)?;
            // Pattern matching exists for text only: `integer ~~ unknown` does not exist
            // (PostgreSQL's message names the pattern's type before it is coerced).
            if !matches!(l.pg, Pg::Text | Pg::Unknown) {
                let r = self.peek(right)?;
                return Err(no_operator(l.pg, symbol(op), r));
            }
            self.sql.push_str(if ilike { ") LIKE unicode_lower(" } else { " LIKE " });
            let r = self.operand(right, Some(Pg::Text))?;
            if !matches!(r.pg, Pg::Text | Pg::Unknown) {
                return Err(no_operator(l.pg, symbol(op), r.pg));
            }
            self.sql.push_str(if ilike { ") ESCAPE '\\')" } else { " ESCAPE '\\')" });
            return Ok(());
        }
        self.sql.push('(');
        let l = self.operand(left, None)?;
        let sql_op = match op {
            CompareOp::Eq => " = ",
            CompareOp::Neq => " <> ",
            CompareOp::Gt => " > ",
            CompareOp::Gte => " >= ",
            CompareOp::Lt => " < ",
            CompareOp::Lte => " <= ",
            other => {
                return Err(invalid(format!("unsupported operator {:?}", other.as_str())));
            }
        };
        if !matches!(op, CompareOp::Eq | CompareOp::Neq) {
            self.collate(l.pg);
        }
        self.sql.push_str(sql_op);
        let r = self.operand(right, Some(l.pg))?;
        if !l.pg.comparable(r.pg) {
            return Err(no_operator(l.pg, symbol(op), r.pg));
        }
        self.sql.push(')');
        Ok(())
    }

    fn expr(&mut self, expr: &Expr) -> Result<(), InvalidSelect> {
        match expr {
            Expr::Compare { op, left, right } => self.compare(*op, left, right)?,
            Expr::Is { negated, left, right } => {
                let keyword = match right {
                    Operand::Literal(Scalar::Null) => "NULL",
                    Operand::Literal(Scalar::Bool(true)) => "TRUE",
                    Operand::Literal(Scalar::Bool(false)) => "FALSE",
                    _ => {
                        let op = if *negated { "is_not" } else { "is" };
                        return Err(invalid(format!(
                            "operator {op:?} compares with null, true or false only"
                        )));
                    }
                };
                self.sql.push('(');
                let l = self.operand(left, Some(Pg::Boolean).filter(|_| keyword != "NULL"))?;
                let not = if *negated { "NOT " } else { "" };
                if keyword != "NULL" && !matches!(l.pg, Pg::Boolean | Pg::Unknown) {
                    return Err(refused(format!(
                        "argument of IS {not}{keyword} must be type boolean, not type {}",
                        l.pg.name()
                    )));
                }
                let _ = write!(self.sql, " IS {not}{keyword})");
            }
            Expr::In { left, list } => {
                self.sql.push('(');
                let l = self.operand(left, None)?;
                self.sql.push_str(" IN (");
                match list {
                    InList::Values(values) => {
                        for (i, v) in values.iter().enumerate() {
                            if i > 0 {
                                self.sql.push_str(", ");
                            }
                            let r = self.operand(v, Some(l.pg))?;
                            if !l.pg.comparable(r.pg) {
                                return Err(no_operator(l.pg, "=", r.pg));
                            }
                        }
                    }
                    InList::Select(s) => {
                        let types = self.select(s)?;
                        match types.as_slice() {
                            [one] if l.pg.comparable(one.pg) => {}
                            [one] => return Err(no_operator(l.pg, "=", one.pg)),
                            _ => {
                                return Err(invalid(format!(
                                    "the sub-select of \"in\" must return 1 column, it returns {}",
                                    types.len()
                                )));
                            }
                        }
                    }
                }
                self.sql.push_str("))");
            }
            Expr::And(items) | Expr::Or(items) => {
                let joiner = if matches!(expr, Expr::And(_)) { " AND " } else { " OR " };
                self.sql.push('(');
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(joiner);
                    }
                    self.expr(e)?;
                }
                self.sql.push(')');
            }
            Expr::Not(inner) => {
                self.sql.push_str("(NOT ");
                self.expr(inner)?;
                self.sql.push(')');
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sql(v: &serde_json::Value) -> Result<(String, Vec<Value>), String> {
        let select = Select::from_json(v).map_err(|e| e.to_string())?;
        compile(&select, OffsetModel::Native, Collation::C)
            .map(|c| (c.sql, c.params))
            .map_err(|e| e.0)
    }

    #[test]
    fn star_expands_in_catalog_order_and_values_are_parameters() {
        let (s, p) = sql(&json!({"data":["*"],"from":"terminal","where":{"eq":["mac_addr","x' OR 1=1 --"]},"limit":5}))
            .unwrap();
        assert_eq!(
            s,
            "SELECT \"terminal\".\"id\", \"terminal\".\"subscriber_id\", \"terminal\".\"mac_addr\", \
             \"terminal\".\"inet_addr\", \"terminal\".\"registered\", \"terminal\".\"last_seen\" FROM \"terminal\" \
             WHERE (\"terminal\".\"mac_addr\" = ?) LIMIT ?"
        );
        assert_eq!(p, vec![Value::Text("x' OR 1=1 --".into()), Value::Integer(5)]);
    }

    #[test]
    fn functions_joins_and_aliases() {
        let (s, _) = sql(&json!({
            "data":[{"s":"username"},{"function":"count","args":{"function":"distinct","args":{"t":"inet_addr"}},"as":"n"}],
            "from":[{"table":"terminal","as":"t"},{"join":"subscriber","join_type":"left","as":"s","on":{"eq":[{"t":"subscriber_id"},{"s":"id"}]}}],
            "group_by":[{"s":"username"}],
            "order_by":"n DESC"
        }))
        .unwrap();
        assert_eq!(
            s,
            "SELECT \"s\".\"username\", count(DISTINCT \"t\".\"inet_addr\") AS \"n\" FROM \"terminal\" AS \"t\" \
             LEFT JOIN \"subscriber\" AS \"s\" ON (\"t\".\"subscriber_id\" = \"s\".\"id\") \
             GROUP BY \"s\".\"username\" ORDER BY \"n\" DESC"
        );
    }

    /// The tail of the SQL and its parameters and skip under `model`.
    fn paged(
        model: OffsetModel,
        v: &serde_json::Value,
    ) -> Result<(String, Vec<Value>, u64), String> {
        let select = Select::from_json(v).map_err(|e| e.to_string())?;
        let c = compile(&select, model, Collation::C).map_err(|e| e.0)?;
        let tail = c.sql.split(" FROM \"terminal\"").nth(1).unwrap_or_default().to_owned();
        Ok((tail, c.params, c.skip))
    }

    #[test]
    fn materialize_moves_the_outermost_offset_out_of_the_sql() {
        use OffsetModel::{Materialize, Native};
        let q = |limit: Option<u64>, offset: Option<u64>| {
            let mut v = json!({"data":["id"],"from":"terminal","order_by":"id"});
            if let Some(l) = limit {
                v["limit"] = json!(l);
            }
            if let Some(o) = offset {
                v["offset"] = json!(o);
            }
            v
        };
        let max = i64::MAX.cast_unsigned();
        let int = Value::Integer;
        // (limit, offset), what native compiles to, what materialize compiles to.
        let cases = [
            (
                Some(5),
                Some(10),
                (" LIMIT ? OFFSET ?", vec![int(5), int(10)]),
                (" LIMIT ?", vec![int(15)], 10),
            ),
            (None, Some(10), (" LIMIT ? OFFSET ?", vec![int(-1), int(10)]), ("", vec![], 10)),
            (
                Some(max),
                Some(1),
                (" LIMIT ? OFFSET ?", vec![int(i64::MAX), int(1)]),
                ("", vec![], 1),
            ),
            (
                Some(max - 1),
                Some(1),
                (" LIMIT ? OFFSET ?", vec![int(i64::MAX - 1), int(1)]),
                (" LIMIT ?", vec![int(i64::MAX)], 1),
            ),
            (
                Some(0),
                Some(10),
                (" LIMIT ? OFFSET ?", vec![int(0), int(10)]),
                (" LIMIT ? OFFSET ?", vec![int(0), int(10)], 0),
            ),
            (
                Some(5),
                Some(0),
                (" LIMIT ? OFFSET ?", vec![int(5), int(0)]),
                (" LIMIT ? OFFSET ?", vec![int(5), int(0)], 0),
            ),
            (Some(5), None, (" LIMIT ?", vec![int(5)]), (" LIMIT ?", vec![int(5)], 0)),
            (None, None, ("", vec![]), ("", vec![], 0)),
        ];
        for (limit, offset, native, materialized) in cases {
            let v = q(limit, offset);
            let order = " ORDER BY \"terminal\".\"id\"";
            let (tail, params, skip) = paged(Native, &v).unwrap();
            assert_eq!((tail, params, skip), (format!("{order}{}", native.0), native.1, 0), "{v}");
            let (tail, params, skip) = paged(Materialize, &v).unwrap();
            assert_eq!(
                (tail, params, skip),
                (format!("{order}{}", materialized.0), materialized.1, materialized.2),
                "{v}"
            );
        }
        // Out-of-range values are refused alike, limit first.
        for model in [Native, Materialize] {
            assert_eq!(
                paged(model, &q(Some(max + 1), Some(3))).unwrap_err(),
                format!("limit {} is out of range", max + 1)
            );
            assert_eq!(
                paged(model, &q(Some(3), Some(max + 1))).unwrap_err(),
                format!("offset {} is out of range", max + 1)
            );
            assert_eq!(
                paged(model, &q(Some(max + 1), Some(max + 1))).unwrap_err(),
                format!("limit {} is out of range", max + 1)
            );
        }
    }

    #[test]
    fn materialize_leaves_a_sub_select_offset_to_sqlite() {
        let v = json!({
            "data":["id"],"from":"terminal",
            "where":{"in":["subscriber_id",{"data":["id"],"from":"subscriber","order_by":"id","limit":3,"offset":4}]},
            "limit":2,"offset":1
        });
        let (tail, params, skip) = paged(OffsetModel::Materialize, &v).unwrap();
        assert_eq!(
            tail,
            " WHERE (\"terminal\".\"subscriber_id\" IN (SELECT \"subscriber\".\"id\" FROM \"subscriber\" \
             ORDER BY \"subscriber\".\"id\" LIMIT ? OFFSET ?)) LIMIT ?"
        );
        assert_eq!(params, vec![Value::Integer(3), Value::Integer(4), Value::Integer(3)]);
        assert_eq!(skip, 1);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            sql(&json!({"data":["id"],"from":"nope"})).unwrap_err(),
            "unknown table \"nope\""
        );
        assert_eq!(
            sql(&json!({"data":["foo"],"from":"terminal"})).unwrap_err(),
            "unknown column \"foo\" in table \"terminal\""
        );
        assert!(
            sql(&json!({"data":[{"function":"sleep","args":[1]}],"from":"terminal"}))
                .unwrap_err()
                .contains("unknown function")
        );
        assert!(sql(&json!({"data":["id"],"from":[{"table":"terminal"},{"join":"subscriber","on":{"eq":["id",{"subscriber":"id"}]}}]}))
            .unwrap_err()
            .contains("ambiguous"));
    }
}
