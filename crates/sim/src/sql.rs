//! Turns a parsed JSONSQL [`Select`] into one SQLite statement with bound parameters.
//!
//! The safety argument is local to this file: every identifier that reaches the SQL text is a
//! catalog table or column name, or an alias that passed `is_identifier` (letters, digits, `_`) and
//! is written double-quoted; every value is a `?` parameter; every function name comes from a
//! whitelist. Nothing the client sends is ever formatted into SQL as it came.

use std::fmt::Write as _;

use iptvportal_catalog::{ColumnType, Table};
use iptvportal_query::{
    ColumnRef, CompareOp, Direction, Expr, FromClause, Function, InList, JoinKind, Operand, Scalar,
    Select,
};
use rusqlite::types::Value;

use crate::OffsetModel;

/// A select the client got wrong: answered with JSON-RPC code -32602 and this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidSelect(pub(crate) String);

/// The functions a select may call, in the order the error message lists them.
const FUNCTIONS: &[&str] =
    &["count", "min", "max", "sum", "avg", "distinct", "lower", "upper", "length", "coalesce"];

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

/// Compiles a select against the catalog, paying for its OFFSET as `offset` says.
pub(crate) fn compile(select: &Select, offset: OffsetModel) -> Result<Compiled, InvalidSelect> {
    let mut c =
        Compiler { sql: String::new(), params: Vec::new(), scopes: Vec::new(), offset, skip: 0 };
    let types = c.select(select)?;
    Ok(Compiled { sql: c.sql, params: c.params, types, skip: c.skip })
}

fn invalid(message: impl Into<String>) -> InvalidSelect {
    InvalidSelect(message.into())
}

/// One table visible in a select: the catalog entry and the name that qualifies its columns.
struct Visible {
    table: &'static Table,
    qualifier: String,
}

/// The tables of one select level, plus the aliases its `data` declares (usable in `order_by` and
/// `group_by`).
struct Scope {
    tables: Vec<Visible>,
    aliases: Vec<String>,
}

struct Compiler {
    sql: String,
    params: Vec<Value>,
    /// Innermost last: a sub-select sees its own tables first, then the enclosing ones.
    scopes: Vec<Scope>,
    offset: OffsetModel,
    /// See [`Compiled::skip`].
    skip: u64,
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

impl Compiler {
    fn param(&mut self, value: Value) {
        self.params.push(value);
        self.sql.push('?');
    }

    fn select(&mut self, select: &Select) -> Result<Vec<Option<ColumnType>>, InvalidSelect> {
        let scope = Self::scope(&select.from)?;
        self.scopes.push(scope);
        let result = self.select_in_scope(select);
        self.scopes.pop();
        result
    }

    fn scope(from: &FromClause) -> Result<Scope, InvalidSelect> {
        let mut tables: Vec<Visible> = Vec::new();
        let refs = std::iter::once(&from.table).chain(from.joins.iter().map(|j| &j.table));
        for r in refs {
            let table = iptvportal_catalog::table(&r.name)
                .ok_or_else(|| invalid(format!("unknown table {:?}", r.name)))?;
            let qualifier = r.alias.clone().unwrap_or_else(|| r.name.clone());
            if tables.iter().any(|v| v.qualifier == qualifier) {
                return Err(invalid(format!(
                    "table or alias {qualifier:?} appears twice in from: give one an alias"
                )));
            }
            tables.push(Visible { table, qualifier });
        }
        Ok(Scope { tables, aliases: Vec::new() })
    }

    fn current(&mut self) -> &mut Scope {
        self.scopes.last_mut().expect("a select pushes its scope before compiling its parts")
    }

    fn select_in_scope(
        &mut self,
        select: &Select,
    ) -> Result<Vec<Option<ColumnType>>, InvalidSelect> {
        self.sql.push_str("SELECT ");
        // `{"function":"distinct","args":[...]}` as the first data item is `SELECT DISTINCT ...`.
        let (leading_distinct, data) = match select.data.split_first() {
            Some((Operand::Function(f), rest)) if f.name.eq_ignore_ascii_case("distinct") => {
                if f.args.is_empty() {
                    return Err(invalid("function \"distinct\" takes at least 1 argument"));
                }
                (Some(f), rest)
            }
            _ => (None, select.data.as_slice()),
        };
        if select.distinct || leading_distinct.is_some() {
            self.sql.push_str("DISTINCT ");
        }
        let mut types = Vec::new();
        let mut first = true;
        if let Some(f) = leading_distinct {
            for arg in &f.args {
                if !first {
                    self.sql.push_str(", ");
                }
                first = false;
                types.push(self.operand(arg)?);
            }
            self.alias(f.alias.as_deref())?;
        }
        for item in data {
            if !first {
                self.sql.push_str(", ");
            }
            first = false;
            match item {
                Operand::Star => types.extend(self.star()),
                Operand::Function(f) => {
                    types.push(self.function(f)?);
                    self.alias(f.alias.as_deref())?;
                }
                other => types.push(self.operand(other)?),
            }
        }
        self.from(&select.from)?;
        if let Some(w) = &select.where_ {
            self.sql.push_str(" WHERE ");
            self.expr(w)?;
        }
        if !select.group_by.is_empty() {
            self.sql.push_str(" GROUP BY ");
            for (i, c) in select.group_by.iter().enumerate() {
                if i > 0 {
                    self.sql.push_str(", ");
                }
                self.sort_key(c)?;
            }
        }
        if !select.order_by.is_empty() {
            self.sql.push_str(" ORDER BY ");
            for (i, o) in select.order_by.iter().enumerate() {
                if i > 0 {
                    self.sql.push_str(", ");
                }
                self.sort_key(&o.column)?;
                match o.direction {
                    Some(Direction::Asc) => self.sql.push_str(" ASC"),
                    Some(Direction::Desc) => self.sql.push_str(" DESC"),
                    None => {}
                }
            }
        }
        self.limit_offset(select.limit, select.offset)?;
        Ok(types)
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

    fn alias(&mut self, alias: Option<&str>) -> Result<(), InvalidSelect> {
        if let Some(a) = alias {
            // The AST only admits identifiers here; checked again because this reaches SQL text.
            if !iptvportal_query::is_identifier(a) {
                return Err(invalid(format!("invalid alias {a:?}")));
            }
            let _ = write!(self.sql, " AS \"{a}\"");
            self.current().aliases.push(a.to_owned());
        }
        Ok(())
    }

    fn star(&mut self) -> Vec<Option<ColumnType>> {
        let scope = self.scopes.last().expect("scope pushed");
        let mut parts = Vec::new();
        let mut types = Vec::new();
        for v in &scope.tables {
            for c in v.table.columns {
                parts.push(format!("\"{}\".\"{}\"", v.qualifier, c.name));
                types.push(Some(c.ty));
            }
        }
        self.sql.push_str(&parts.join(", "));
        types
    }

    fn from(&mut self, from: &FromClause) -> Result<(), InvalidSelect> {
        let table_sql = |name: &str, alias: Option<&String>| match alias {
            None => format!("\"{name}\""),
            Some(a) => format!("\"{name}\" AS \"{a}\""),
        };
        let _ =
            write!(self.sql, " FROM {}", table_sql(&from.table.name, from.table.alias.as_ref()));
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
                    self.expr(on)?;
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

    /// Resolves a column to its qualified SQL name and catalog type.
    fn column(&self, c: &ColumnRef) -> Result<(String, ColumnType), InvalidSelect> {
        if let Some(q) = &c.table {
            for scope in self.scopes.iter().rev() {
                if let Some(v) = scope.tables.iter().find(|v| &v.qualifier == q) {
                    let col = v.table.column(&c.name).ok_or_else(|| {
                        invalid(format!("unknown column {:?} in table {:?}", c.name, v.table.name))
                    })?;
                    return Ok((format!("\"{q}\".\"{}\"", col.name), col.ty));
                }
            }
            return Err(invalid(format!("unknown table or alias {q:?} in column {c}")));
        }
        for scope in self.scopes.iter().rev() {
            let mut found =
                scope.tables.iter().filter_map(|v| v.table.column(&c.name).map(|col| (v, col)));
            match (found.next(), found.next()) {
                (Some((v, col)), None) => {
                    return Ok((format!("\"{}\".\"{}\"", v.qualifier, col.name), col.ty));
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(format!(
                        "ambiguous column {:?}: qualify it with a table or alias",
                        c.name
                    )));
                }
                (None, _) => {}
            }
        }
        let scope = self.scopes.last().expect("scope pushed");
        Err(match scope.tables.as_slice() {
            [one] => invalid(format!("unknown column {:?} in table {:?}", c.name, one.table.name)),
            many => invalid(format!(
                "unknown column {:?} in tables {}",
                c.name,
                many.iter().map(|v| format!("{:?}", v.table.name)).collect::<Vec<_>>().join(", ")
            )),
        })
    }

    /// An `order_by` or `group_by` key: a `data` alias of this select, or a column.
    fn sort_key(&mut self, c: &ColumnRef) -> Result<(), InvalidSelect> {
        if c.table.is_none()
            && self.scopes.last().is_some_and(|s| s.aliases.iter().any(|a| a == &c.name))
        {
            let _ = write!(self.sql, "\"{}\"", c.name);
            return Ok(());
        }
        let (sql, _) = self.column(c)?;
        self.sql.push_str(&sql);
        Ok(())
    }

    fn operand(&mut self, operand: &Operand) -> Result<Option<ColumnType>, InvalidSelect> {
        match operand {
            Operand::Star => {
                Err(invalid("\"*\" is only allowed in data and as the argument of count"))
            }
            Operand::Column(c) => {
                let (sql, ty) = self.column(c)?;
                self.sql.push_str(&sql);
                Ok(Some(ty))
            }
            Operand::Literal(s) => {
                self.param(bind(s));
                Ok(None)
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
                Ok(types.first().copied().flatten())
            }
        }
    }

    fn function(&mut self, f: &Function) -> Result<Option<ColumnType>, InvalidSelect> {
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
                let _ = write!(self.sql, "{name}(");
                let ty = match &f.args[0] {
                    Operand::Star if name == "count" => {
                        self.sql.push('*');
                        None
                    }
                    Operand::Function(inner) if inner.name.eq_ignore_ascii_case("distinct") => {
                        if inner.args.len() != 1 {
                            return Err(invalid(format!(
                                "function \"distinct\" inside {name:?} takes 1 argument, got {}",
                                inner.args.len()
                            )));
                        }
                        self.sql.push_str("DISTINCT ");
                        self.operand(&inner.args[0])?
                    }
                    arg => self.operand(arg)?,
                };
                self.sql.push(')');
                // min and max return one of their inputs, so they keep its type (a boolean stays a
                // boolean); count, sum and avg are numbers whatever they count.
                Ok(if matches!(name.as_str(), "min" | "max") { ty } else { None })
            }
            "lower" | "upper" => {
                arity(f.args.len() == 1, "1")?;
                // SQLite's own lower/upper are ASCII-only; these are the Unicode ones (see db.rs).
                let _ = write!(self.sql, "unicode_{name}(");
                self.operand(&f.args[0])?;
                self.sql.push(')');
                Ok(Some(ColumnType::Text))
            }
            "length" => {
                arity(f.args.len() == 1, "1")?;
                self.sql.push_str("length(");
                self.operand(&f.args[0])?;
                self.sql.push(')');
                Ok(Some(ColumnType::Integer))
            }
            "coalesce" => {
                arity(f.args.len() >= 2, "at least 2")?;
                self.sql.push_str("coalesce(");
                let mut ty = None;
                for (i, arg) in f.args.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    let t = self.operand(arg)?;
                    ty = ty.or(t);
                }
                self.sql.push(')');
                Ok(ty)
            }
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

    fn expr(&mut self, expr: &Expr) -> Result<(), InvalidSelect> {
        match expr {
            Expr::Compare { op, left, right } => {
                self.sql.push('(');
                if *op == CompareOp::Ilike {
                    // Both sides lowered with the Unicode function, then a case-sensitive LIKE:
                    // case-insensitive for Cyrillic too, where SQLite's LIKE folds only ASCII.
                    self.sql.push_str("unicode_lower(");
                    self.operand(left)?;
                    self.sql.push_str(") LIKE unicode_lower(");
                    self.operand(right)?;
                    self.sql.push_str(") ESCAPE '\\'");
                } else {
                    self.operand(left)?;
                    let sql_op = match op {
                        CompareOp::Eq => " = ",
                        CompareOp::Neq => " <> ",
                        CompareOp::Gt => " > ",
                        CompareOp::Gte => " >= ",
                        CompareOp::Lt => " < ",
                        CompareOp::Lte => " <= ",
                        CompareOp::Like => " LIKE ",
                        other => {
                            return Err(invalid(format!(
                                "unsupported operator {:?}",
                                other.as_str()
                            )));
                        }
                    };
                    self.sql.push_str(sql_op);
                    self.operand(right)?;
                    if *op == CompareOp::Like {
                        self.sql.push_str(" ESCAPE '\\'");
                    }
                }
                self.sql.push(')');
            }
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
                self.operand(left)?;
                let _ = write!(self.sql, " IS {}{keyword})", if *negated { "NOT " } else { "" });
            }
            Expr::In { left, list } => {
                self.sql.push('(');
                self.operand(left)?;
                self.sql.push_str(" IN (");
                match list {
                    InList::Values(values) => {
                        for (i, v) in values.iter().enumerate() {
                            if i > 0 {
                                self.sql.push_str(", ");
                            }
                            self.operand(v)?;
                        }
                    }
                    InList::Select(s) => {
                        let types = self.select(s)?;
                        if types.len() != 1 {
                            return Err(invalid(format!(
                                "the sub-select of \"in\" must return 1 column, it returns {}",
                                types.len()
                            )));
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
        compile(&select, OffsetModel::Native).map(|c| (c.sql, c.params)).map_err(|e| e.0)
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
        let c = compile(&select, model).map_err(|e| e.0)?;
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
