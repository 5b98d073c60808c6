//! The scenarios, one module each, sharing the strategies they run over.

pub(crate) mod bad_input;
pub(crate) mod faults;
pub(crate) mod integrity;
pub(crate) mod kill;
pub(crate) mod matrix;
pub(crate) mod s3;
pub(crate) mod secrets;
pub(crate) mod sync;

/// A traversal, as the command line asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    Offset,
    IdRange,
    /// `--strategy id-range --parallel 3`.
    Parallel3,
}

impl Strategy {
    pub(crate) const ALL: [Strategy; 3] =
        [Strategy::Offset, Strategy::IdRange, Strategy::Parallel3];

    pub(crate) fn args(self) -> Vec<String> {
        let args: &[&str] = match self {
            Strategy::Offset => &["--strategy", "offset"],
            Strategy::IdRange => &["--strategy", "id-range", "--parallel", "1"],
            Strategy::Parallel3 => &["--strategy", "id-range", "--parallel", "3"],
        };
        args.iter().map(|&a| a.to_owned()).collect()
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Strategy::Offset => "offset",
            Strategy::IdRange => "id-range",
            Strategy::Parallel3 => "parallel3",
        }
    }
}

/// Owned strings from string slices, for building argument lists.
pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}
