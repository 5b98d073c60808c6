//! The one error type of the query layer.

/// Everything that can be wrong with a query: built in code, parsed from the wire, or parsed from a
/// CLI filter string. Each variant carries what a user needs to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A table, column, alias or function name that is not a plain identifier.
    #[error("invalid identifier {name:?}: use letters, digits and _, not starting with a digit")]
    InvalidIdentifier {
        /// The offending name.
        name: String,
    },
    /// A `__lookup` suffix that does not exist.
    #[error("unknown lookup {lookup:?} in {field:?}: use one of {}", crate::LOOKUPS.join(", "))]
    UnknownLookup {
        /// The whole field expression, e.g. `balance__greater`.
        field: String,
        /// The unknown suffix, e.g. `greater`.
        lookup: String,
    },
    /// `__in` with no values: it would match nothing, and `in` with no operands is malformed.
    #[error("empty list for {field:?}: __in needs at least one value")]
    EmptyIn {
        /// The field expression, e.g. `id__in`.
        field: String,
    },
    /// A value of the wrong kind for its lookup (a list for `__gte`, a non-boolean for `__isnull`).
    #[error("invalid value for {field:?}: {reason}")]
    InvalidValue {
        /// The field expression.
        field: String,
        /// What was expected.
        reason: String,
    },
    /// A filter's value that is not of its column's type (a boolean for a timestamp column, text
    /// for an integer column, a number for a text column).
    #[error("{}", crate::typed::type_message(column, *expected, value))]
    FilterType {
        /// The column, as the filter names it.
        column: String,
        /// The column's type.
        expected: crate::ValueType,
        /// The value as given.
        value: String,
    },
    /// A pattern lookup or operator (`__contains`, `like`) on a column that does not hold text.
    #[error("{}", crate::typed::pattern_message(column, lookup, *ty))]
    PatternNeedsText {
        /// The column, as the filter names it.
        column: String,
        /// The lookup (`__contains`) or operator (`like`) as written.
        lookup: String,
        /// The column's type.
        ty: crate::ValueType,
    },
    /// A CLI filter string that does not parse.
    #[error("invalid filter {input:?}: {reason}")]
    InvalidFilter {
        /// The filter as given.
        input: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A `where` key that is not an operator of the protocol.
    #[error("unknown operator {op:?}")]
    UnknownOperator {
        /// The key.
        op: String,
    },
    /// An operator with the wrong number of operands.
    #[error("operator {op:?} takes {expected} operand(s), got {got}")]
    Arity {
        /// The operator.
        op: String,
        /// How many it takes.
        expected: &'static str,
        /// How many it got.
        got: usize,
    },
    /// JSON that is not a valid piece of a select.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which part (`select`, `where`, `order_by`, …).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A tree that no wire form can express.
    #[error("cannot be written as JSONSQL: {detail}")]
    Unrepresentable {
        /// Why.
        detail: String,
    },
}
