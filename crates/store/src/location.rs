//! What `--out` names: a local directory, or a bucket and a prefix on S3-compatible storage.

use std::path::PathBuf;

use crate::Error;
use crate::error::short;

/// Where a dump writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// `s3://bucket/prefix`: objects under `prefix/` in `bucket` (`prefix` empty for the bucket's
    /// root).
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix, without leading or trailing `/`.
        prefix: String,
    },
}

impl Location {
    /// Reads `--out`: `s3://bucket[/prefix]` (also `s3a://`), or anything without a `scheme://`
    /// as a local path. Another scheme, a bucket name S3 refuses, or a prefix with empty, `.` or
    /// `..` parts is an error that says how to write it.
    pub fn parse(out: &str) -> Result<Location, Error> {
        // Echoed in part, and on one line whatever it holds.
        let printable: String = out.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
        let refuse = |reason: String| Error::Location { shown: short(&printable, 80), reason };
        let Some((scheme, rest)) = out.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(out)));
        };
        if !scheme.eq_ignore_ascii_case("s3") && !scheme.eq_ignore_ascii_case("s3a") {
            return Err(refuse(format!(
                "{:?} storage is not supported; write s3://bucket/prefix for S3-compatible \
                 storage, or a local directory",
                short(scheme, 16)
            )));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some(reason) = bucket_problem(bucket) {
            return Err(refuse(format!("{reason}; write s3://bucket/prefix")));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && prefix.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(refuse(
                "the prefix has an empty, \".\" or \"..\" part; write s3://bucket/a/b".to_owned(),
            ));
        }
        if prefix.chars().any(|c| c.is_control() || c == '\\') {
            return Err(refuse("the prefix holds a control character or a backslash".to_owned()));
        }
        Ok(Location::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Why S3 would refuse `bucket` as a bucket name (3 to 63 lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit), or `None`.
fn bucket_problem(bucket: &str) -> Option<String> {
    if bucket.is_empty() {
        return Some("the bucket name is missing".to_owned());
    }
    let shown = short(bucket, 63);
    if !(3..=63).contains(&bucket.len()) {
        return Some(format!("the bucket name {shown:?} must be 3 to 63 characters long"));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    if !bucket.chars().all(allowed) {
        return Some(format!(
            "the bucket name {shown:?} may hold only lowercase letters, digits, \".\" and \"-\""
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(bucket.chars().next()) || !edge(bucket.chars().last()) || bucket.contains("..") {
        return Some(format!(
            "the bucket name {shown:?} must start and end with a letter or digit, without \"..\""
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> Location {
        Location::S3 { bucket: bucket.into(), prefix: prefix.into() }
    }

    #[test]
    fn s3_urls_and_paths() {
        assert_eq!(
            Location::parse("s3://dumps/portal/daily").unwrap(),
            s3("dumps", "portal/daily")
        );
        assert_eq!(Location::parse("s3://dumps/portal/").unwrap(), s3("dumps", "portal"));
        assert_eq!(Location::parse("S3A://dumps").unwrap(), s3("dumps", ""));
        assert_eq!(Location::parse("s3://a.b-c9/x").unwrap(), s3("a.b-c9", "x"));
        assert_eq!(Location::parse("out/dir").unwrap(), Location::Local("out/dir".into()));
        assert_eq!(Location::parse("./s3:").unwrap(), Location::Local("./s3:".into()));
        assert_eq!(s3("dumps", "a/b").to_string(), "s3://dumps/a/b");
        assert_eq!(s3("dumps", "").to_string(), "s3://dumps");
    }

    proptest::proptest! {
        /// Every bucket and prefix S3 takes reads back from its `s3://` form, which is what
        /// `Display` writes; a trailing `/` changes nothing.
        #[test]
        fn s3_urls_round_trip(
            bucket in "[a-z0-9][a-z0-9-]{1,20}[a-z0-9]",
            parts in proptest::collection::vec("[A-Za-z0-9_=+-][A-Za-z0-9_.=+-]{0,12}", 0..4),
            slash in proptest::bool::ANY,
        ) {
            let parts: Vec<String> = parts.into_iter().filter(|p| p != "." && p != "..").collect();
            let prefix = parts.join("/");
            let location = s3(&bucket, &prefix);
            let mut written = location.to_string();
            if slash && !prefix.is_empty() {
                written.push('/');
            }
            proptest::prop_assert_eq!(Location::parse(&written).unwrap(), location);
        }

        /// Anything at all either parses or is refused with one line that echoes at most a short
        /// part of it; nothing panics.
        #[test]
        fn any_input_is_parsed_or_refused_in_one_line(out in "(?s).{0,300}") {
            match Location::parse(&out) {
                Ok(_) => {}
                Err(e) => {
                    let line = e.to_string();
                    proptest::prop_assert!(!line.contains('\n'));
                    proptest::prop_assert!(line.chars().count() < 400, "{}", line);
                }
            }
        }
    }

    #[test]
    fn refusals_say_how_to_write_it() {
        let message = |out: &str| Location::parse(out).unwrap_err().to_string();
        assert_eq!(
            message("gs://b/x"),
            "gs://b/x: \"gs\" storage is not supported; write s3://bucket/prefix for \
             S3-compatible storage, or a local directory"
        );
        assert_eq!(message("s3://"), "s3://: the bucket name is missing; write s3://bucket/prefix");
        assert_eq!(
            message("s3://ab/x"),
            "s3://ab/x: the bucket name \"ab\" must be 3 to 63 characters long; write \
             s3://bucket/prefix"
        );
        assert_eq!(
            message("s3://My_Bucket/x"),
            "s3://My_Bucket/x: the bucket name \"My_Bucket\" may hold only lowercase letters, \
             digits, \".\" and \"-\"; write s3://bucket/prefix"
        );
        assert_eq!(
            message("s3://-abc/x"),
            "s3://-abc/x: the bucket name \"-abc\" must start and end with a letter or digit, \
             without \"..\"; write s3://bucket/prefix"
        );
        assert_eq!(
            message("s3://abc/a//b"),
            "s3://abc/a//b: the prefix has an empty, \".\" or \"..\" part; write s3://bucket/a/b"
        );
        assert!(message("s3://abc/../b").contains("\"..\" part"));
        // A long input is echoed only in part.
        let long = format!("s3://{}", "x".repeat(500));
        assert!(message(&long).len() < 300);
    }
}
